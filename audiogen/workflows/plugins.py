"""``audiogen plugins``: the plugins and every component by kind, with its plugin and version, as JSON or as a
table; load failures and name clashes go to stderr."""

from __future__ import annotations


def report() -> dict:
    """The registry as ``audiogen plugins --json`` prints it."""
    from audiogen.plugins import KINDS, get_registry

    reg = get_registry()
    return {
        "plugins": reg.plugins,
        "components": {k: {n: {"plugin": c.plugin, "version": c.version, "gin": c.gin_name}
                           for n, c in sorted(reg.components[k].items())} for k in KINDS},
        "config_dirs": [[p, str(d)] for p, d in reg.config_dirs],
        "failures": [f.__dict__ for f in reg.failures], "conflicts": reg.conflicts,
        "clashes": {f"{k}.{n}": ps for (k, n), ps in sorted(reg.clashes.items())}, "warnings": reg.warnings,
    }


def table() -> tuple[list[str], list[str]]:
    """(lines for stdout: plugins, then components by kind; lines for stderr: failures and clashes)."""
    from audiogen.plugins import KINDS, get_registry

    reg = get_registry()
    out = ["plugins: " + ", ".join(f"{p} {v}" for p, v in reg.plugins.items())]
    every = [c for kind in KINDS for c in reg.components[kind].values()]
    # columns as wide as the longest name and "plugin version", so long names and short versions stay aligned
    name_w = max((len(c.name) for c in every), default=0)
    by_w = max((len(f"{c.plugin} {c.version}") for c in every), default=0)
    for kind in KINDS:
        comps = reg.components[kind]
        out.append(f"\n{kind}:")
        if not comps:
            out.append("  (none)")
        for name, c in sorted(comps.items()):
            out.append(f"  {name:<{name_w}}  {f'{c.plugin} {c.version}':<{by_w}}  {c.summary}".rstrip())
    err = [f"\nfailed: plugin '{f.plugin}' at {f.stage}: {f.error}" for f in reg.failures]
    err += [f"\nclash: {k}.{n}: provided by plugins {' and '.join(sorted(ps))}, unusable until one is removed"
            for (k, n), ps in sorted(reg.clashes.items())]
    return out, err
