"""``audiogen plugins new NAME``: a working plugin package written from the template files beside this module.

The files under ``files/`` end in ``.tmpl`` and use ``{{name}}`` (the plugin's entry-point name, lower_snake),
``{{package}}`` (``audiogen_NAME``) and ``{{dist}}`` (``audiogen-NAME`` with dashes), in paths and contents.
``plugins/audiogen-example`` in audiogen's repository is this template written with NAME=example plus more
components; tests/test_plugin_kit.py keeps the two identical where they overlap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from audiogen.errors import ArtifactError, ConfigError

FILES = Path(__file__).resolve().parent / "files"
SUFFIX = ".tmpl"


def placeholders(name: str) -> dict[str, str]:
    from audiogen.plugins import BUILTIN, check_name

    try:
        check_name(name, "a plugin name")
    except ValueError as exc:
        raise ConfigError(str(exc), fix="use a lower_snake name, e.g. my_prior") from None
    if name == BUILTIN:
        raise ConfigError(f"plugin name {name!r} is audiogen's own", fix="choose another name")
    return {"{{name}}": name, "{{package}}": f"audiogen_{name}", "{{dist}}": f"audiogen-{name.replace('_', '-')}"}


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def render(name: str) -> dict[str, str]:
    """Relative path -> content of every file of the plugin package NAME."""
    values = placeholders(name)
    out = {}
    for src in sorted(FILES.rglob(f"*{SUFFIX}")):
        rel = src.relative_to(FILES).as_posix()[: -len(SUFFIX)]
        out[_fill(rel, values)] = _fill(src.read_text(), values)
    return out


def write_plugin(name: str, out: Path) -> Path:
    """Write the package NAME into the new folder ``out`` (all or nothing: built beside it, then renamed)."""
    out = Path(out)
    files = render(name)
    if out.exists():
        raise ConfigError(f"{out} already exists", fix="choose a new folder with -o, or remove it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ArtifactError(f"cannot write {out} ({exc.strerror or exc})", fix="choose a writable folder with -o") \
            from None
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        os.rename(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtifactError(f"cannot write {out} ({exc.strerror or exc})", fix="choose a writable folder with -o") \
            from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out



# A plugin made from the template may add hooks to plugin.py below this line; `update` keeps them.
MARKER = "# --- beyond the template"
KEEP = ("README.md",)  # a plugin's own description: never compared, never rewritten
# the author's version, dependencies and metadata: compared (--diff, --check) but never rewritten in a plugin
OWNED = ("pyproject.toml",)


def plugin_names(folder: Path) -> list[str]:
    """The entry-point names (plugin names) a plugin folder's pyproject.toml declares; [] without one."""
    import tomllib

    path = Path(folder) / "pyproject.toml"
    if not path.is_file():
        return []
    try:
        meta = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc})", fix="fix the file, or name another folder") from None
    return sorted(meta.get("project", {}).get("entry-points", {}).get("audiogen", {}))


def check_folder(name: str, folder: Path) -> None:
    """Refuse to touch an existing plugin folder under another NAME (a typo would write a second package)."""
    placeholders(name)  # a valid name first
    names = plugin_names(folder)
    if names and name not in names:
        raise ConfigError(f"{folder} is plugin {', '.join(map(repr, names))} (its pyproject.toml entry point), "
                          f"not {name!r}", fix=f"pass the plugin's own name: {names[0]}")
    if not names and any(Path(folder).iterdir()):
        raise ConfigError(f"{folder} is not empty and its pyproject.toml declares no audiogen plugin",
                          fix="name an empty or new folder, or a plugin made from the template")


def planned(name: str, folder: Path) -> dict[str, tuple[str | None, str]]:
    """Relative path -> (current text or None, template text) for every template file that differs (README.md
    left out; plugin.py keeps what follows ``MARKER``)."""
    out = {}
    for rel, text in render(name).items():
        if rel in KEEP:
            continue
        path = Path(folder) / rel
        old = path.read_text() if path.exists() else None
        if old is not None and MARKER in old:
            text = text.rstrip("\n") + "\n\n\n" + old[old.index(MARKER):]
        if text != old:
            out[rel] = (old, text)
    return out


def diff(name: str, folder: Path) -> str:
    """A unified diff from the plugin in ``folder`` to the template (what ``update`` would write, plus OWNED)."""
    import difflib

    chunks = []
    for rel, (old, new) in planned(name, folder).items():
        note = "   (yours: shown, never rewritten)" if rel in OWNED else ""
        chunks.extend(difflib.unified_diff((old or "").splitlines(True), new.splitlines(True),
                                           f"{folder}/{rel}" if old is not None else "/dev/null",
                                           f"template/{rel}{note}"))
    return "".join(chunks)


def update(name: str, folder: Path) -> list[str]:
    """Rewrite the template's files in an existing plugin ``folder`` (an explicit choice: ``--overwrite``); keeps
    README.md, pyproject.toml (its version, dependencies) and what follows ``MARKER`` in plugin.py. Returns the
    relative paths written."""
    check_folder(name, folder)
    changed = []
    for rel, (_, text) in planned(name, folder).items():
        if rel in OWNED and (Path(folder) / rel).exists():
            continue
        from audiogen.artifacts import atomic_write_text

        path = Path(folder) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        changed.append(rel)
    return changed
