"""Plugin loading and the component registry.

Built-ins (``audiogen.builtin``) and third-party packages (entry-point group ``audiogen``) register through the
same hooks. A plugin that fails to import, whose hooks do not match the hookspecs, or that fails to register is
skipped whole with one warning naming it. Precedence: a built-in name cannot be shadowed (the plugin's component is
skipped with a warning naming both); a name registered by two plugins is unusable, and using it is an error naming
both (other names keep working). ``AUDIOGEN_PLUGINS`` (comma-separated entry-point names) restricts which
third-party plugins load: unset loads all, an empty value loads none; a name that is not installed is a warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import importlib
import importlib.metadata as md
import inspect
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gin
import pluggy

from audiogen import hookspecs
from audiogen.errors import PluginError

log = logging.getLogger("audiogen")

ENV_VAR = "AUDIOGEN_PLUGINS"
BUILTIN = "audiogen"
PACKAGE = __name__.partition(".")[0]  # configurables declared by its modules are audiogen's own
# the component kinds: the hookspecs marked @component (audiogen.hookspecs), in their order
KINDS = tuple(hookspecs.KINDS)


def noun(kind: str) -> str:
    """What one component of ``kind`` is called in messages ("encoder", "annealing schedule")."""
    return hookspecs.KINDS.get(kind, kind)


def own_configurables() -> set[str]:
    """gin names of audiogen's own configurables that are no component (``audio``, ``train``, ``pipeline``, ...):
    those that modules of the audiogen package declare with ``@gin.configurable``."""
    from audiogen import model, settings  # noqa: F401  (importing them declares them)

    return {c.name for _, c in gin.config._REGISTRY.items() if c.module.partition(".")[0] == PACKAGE}


@functools.cache
def reserved_names(kind: str | None = None) -> tuple[str, ...]:
    """Names a component of ``kind`` may not take, because configs write them without a kind and another would make
    such bindings ambiguous: audiogen's own configurables, and the built-in objectives (``pipeline.objective =
    @elbo()``, ``elbo.beta``: stored configs made before objectives were a kind say so) unless ``kind`` is
    ``objectives`` (there a built-in name is kept by the precedence rule)."""
    names = own_configurables()
    if kind != "objectives":
        builtin = importlib.import_module("audiogen.builtin")
        builtin.register_objectives(register=lambda name, factory=None: names.add(name))
    return tuple(sorted(names))


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_name(name, what: str = "component name", kind: str | None = None) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        hint = ""
        if isinstance(name, str) and name.isidentifier():
            hint = f" (e.g. '{re.sub(r'(?<=[a-z0-9])(?=[A-Z])', '_', name).lower().strip('_')}')"
        raise ValueError(f"{what} must be lower_snake_case (a-z, 0-9, _; starting with a letter), "
                         f"got {name!r}{hint}")
    reserved = reserved_names(kind)
    if name in reserved:
        raise ValueError(f"component name '{name}' is reserved for audiogen's own settings and objectives "
                         f"({', '.join(reserved)})")


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]  # gin-configurable as "<kind>.<name>"
    plugin: str
    version: str

    @property
    def gin_name(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def summary(self) -> str:
        doc = (getattr(self.factory, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass
class Failure:
    plugin: str
    stage: str  # "import" or the hook name
    error: str


@dataclass
class Registry:
    components: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: dict[str, str] = field(default_factory=dict)  # plugin name -> version
    config_dirs: list[tuple[str, Path]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # what was refused, one line each (plugins --json)
    clashes: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (kind, name) -> its plugins
    warnings: list[str] = field(default_factory=list)  # load-time warnings that are no plugin's failure
    excluded: list[str] = field(default_factory=list)  # installed plugins that AUDIOGEN_PLUGINS leaves out
    logged: list[str] = field(default_factory=list)  # every warning logged while loading (audiogen.testing replays)

    def warn(self, msg: str) -> None:
        self.logged.append(msg)
        log.warning("%s", msg)

    def add(self, kind: str, name: str, factory: Callable, plugin: str) -> None:
        """Register one component. Built-ins win over plugins (register them first); a second plugin with the
        same name makes the name unusable (``get`` and gin then raise an error naming both)."""
        check_name(name, kind=kind)
        if (kind, name) in self.clashes:
            self.clashes[kind, name].append(plugin)
            return
        existing = self.components[kind].get(name)
        if existing is not None:
            if existing.plugin == BUILTIN:
                msg = (f"plugin '{plugin}' registers {noun(kind)} '{name}', a name built into audiogen: the "
                       f"plugin's {noun(kind)} is skipped and '{kind}.{name}' stays the built-in one "
                       f"(rename it in plugin '{plugin}')")
                self.conflicts.append(msg)
                self.warn(msg)
                return
            del self.components[kind][name]
            _gin_unwrap(kind, name)
            self.clashes[kind, name] = [existing.plugin, plugin]
            self.conflicts.append(f"{noun(kind)} '{name}' is provided by both plugin '{existing.plugin}' and "
                                  f"plugin '{plugin}'")
            return
        self.components[kind][name] = Component(kind, name, _gin_wrap(kind, name, factory), plugin,
                                                self.plugins.get(plugin, "?"))

    def clash_error(self, kind: str, name: str) -> PluginError:
        both = " and ".join(f"'{p}'" for p in sorted(self.clashes[kind, name]))
        return PluginError(f"{kind}.{name} is provided by plugins {both}, so it cannot be used",
                           fix=f"uninstall one of them, or list the plugins to load in {ENV_VAR} (comma-separated)")

    def check(self) -> None:
        """Kept for callers that check before building: clashes now fail only where the name is used."""

    def get(self, kind: str, name: str) -> Component:
        if kind not in self.components:
            raise PluginError(f"unknown component kind '{kind}'; kinds: {', '.join(KINDS)}")
        if (kind, name) in self.clashes:
            raise self.clash_error(kind, name)
        try:
            return self.components[kind][name]
        except KeyError:
            known = sorted(self.components[kind])
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known) or 'none'}"
            raise PluginError(f"no {noun(kind)} named '{name}' ({hint})",
                              fix="run `audiogen plugins` to list components") from None

    def clash_for(self, gin_name: str) -> PluginError | None:
        """The error for a gin name ``<kind>.<name>`` that two plugins provide, else None."""
        kind, _, name = gin_name.rpartition(".")
        kind = kind.rsplit(".", 1)[-1]
        if (kind, name) in self.clashes:
            return self.clash_error(kind, name)
        hits = [k for k, n in self.clashes if n == name and not kind]
        return self.clash_error(hits[0], name) if len(hits) == 1 else None

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def describe(self, obj: Any) -> dict[str, str]:
        """Name, plugin and version of the component that built ``obj`` (recorded in artifacts)."""
        tag = getattr(obj, "audiogen_component", None)
        if tag is None:
            return {"name": type(obj).__name__, "plugin": "?", "version": "?"}
        kind, name = tag.split(".", 1)
        comp = self.components[kind][name]
        return {"name": tag, "plugin": comp.plugin, "version": comp.version}


_BUILT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("audiogen_built_components", default=None)
_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("audiogen_check_plugin_components", default=False)
# kinds whose contract checker runs on a plugin's component as gin builds it for training (cheap, and training
# relies on them: a bad schedule trains and samples silently). Priors are checked by train-prior after building.
CHECKED_KINDS = {"schedules": "check_schedule", "distributions": "check_distribution", "codings": "check_coding",
                 "objectives": "check_objective", "anneal": "check_anneal"}


@contextlib.contextmanager
def checking_plugin_components():
    """Inside the block, each plugin component of a ``CHECKED_KINDS`` kind is run through its contract checker as
    gin builds it: breaking it is one PluginError naming the component, its plugin and the rule."""
    token = _CHECKING.set(True)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def contract_error(kind: str, who: dict, exc: BaseException) -> PluginError:
    """The error for plugin component ``who`` ({"name", "plugin", "version"}) that failed its kind's checker."""
    err = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
    what = noun(kind)
    checker = CHECKED_KINDS.get(kind, f"check_{kind.removesuffix('s')}")
    return PluginError(f"{what} {who['name']} from plugin '{who['plugin']}' {who['version']} breaks the {what} "
                       f"contract: {err}", fix=f"fix the {what} in plugin '{who['plugin']}' (its tests should run "
                       f"audiogen.contracts.{checker}; see the plugin guide, docs/plugins.md)")


def check_component(kind: str, obj: Any, who: dict) -> None:
    """Run ``obj`` (a copy of it, with torch's random state kept) through its kind's contract checker."""
    import copy

    import torch

    from audiogen import contracts

    checker = getattr(contracts, CHECKED_KINDS[kind])
    try:
        with torch.random.fork_rng():
            checker(copy.deepcopy(obj))
    except Exception as exc:  # whatever the plugin raises, the user learns which plugin and which rule
        err = contract_error(kind, who, exc)
        err.unaugmented = err  # gin appends "In call to configurable ..." on the way out; build_pipeline drops it
        raise err from None


@contextlib.contextmanager
def recording_builds():
    """Collect every component gin builds inside the block: {gin name: {"plugin", "version"}} (what runs record)."""
    token = _BUILT.set({})
    try:
        yield _BUILT.get()
    finally:
        _BUILT.reset(token)


def provenance_of(record: dict) -> dict:
    """{gin name: {"plugin", "version"}} of a checkpoint's ``audiogen`` record: ``built_components`` (every component
    gin built) and ``components`` (role -> {"name", "plugin", "version"}: all that runs made before
    ``built_components`` existed recorded)."""
    out = {}
    for prov in (record.get("components") or {}).values() if isinstance(record, dict) else ():
        if isinstance(prov, dict) and isinstance(prov.get("name"), str) and "." in prov["name"]:
            out[prov["name"]] = {"plugin": prov.get("plugin", "?"), "version": prov.get("version", "?")}
    built = record.get("built_components") if isinstance(record, dict) else None
    out.update(built if isinstance(built, dict) else {})
    return out


def plugin_state(plugin: str, short: bool = False) -> str:
    """Why a plugin's components are not available: "is not installed", "is installed but not loaded
    (AUDIOGEN_PLUGINS=...)", "is installed but failed to load (...)", or "(version V) no longer provides it"."""
    reg = get_registry()
    if plugin in reg.plugins:
        return "no longer provides it" if short else f"(version {reg.plugins[plugin]}) no longer provides it"
    failed = [f for f in reg.failures if f.plugin == plugin]
    if failed:
        return "is installed but failed to load" + ("" if short else f" at {failed[0].stage} ({failed[0].error})")
    if plugin in reg.excluded:
        return f"is installed but not loaded ({ENV_VAR}={os.environ.get(ENV_VAR, '')!r} does not list it)"
    return "is not installed"


def skipped_plugins() -> list[str]:
    """Installed plugins that are not loaded, one line each (what an unknown-name error should mention)."""
    reg = get_registry()
    lines = [f"plugin '{f.plugin}' failed to load at {f.stage} ({f.error})" for f in reg.failures]
    if reg.excluded:
        names = ", ".join(f"'{p}'" for p in reg.excluded)
        lines.append(f"installed plugin{'s' if len(reg.excluded) > 1 else ''} {names} not loaded: "
                     f"{ENV_VAR}={os.environ.get(ENV_VAR, '')!r} does not list {'them' if len(reg.excluded) > 1 else 'it'}")
    return lines


def missing_plugins(built: dict) -> list[str]:
    """What ``check_provenance`` would refuse, one line each ("plugin 'x' 0.1 is not installed (priors.x_y)")."""
    reg = get_registry()
    out = []
    for gin_name, prov in sorted((built or {}).items()):
        if not isinstance(prov, dict) or not isinstance(gin_name, str) or "." not in gin_name:
            continue
        kind, name = gin_name.split(".", 1)
        if name not in reg.components.get(kind, {}):
            plugin, version = prov.get("plugin", "?"), prov.get("version", "?")
            state = plugin_state(plugin, short=True)
            out.append(f"plugin '{plugin}' {version} {state} ({gin_name})")
    return out


def check_provenance(built: dict, where: str) -> None:
    """Refuse, before gin reads a saved config, a run whose components came from a plugin that is not loaded:
    "needs plugin X (version Y)" rather than gin's unknown-name error. ``built``: ``provenance_of(record)``."""
    reg = get_registry()
    for gin_name, prov in sorted((built or {}).items()):
        if not isinstance(prov, dict) or not isinstance(gin_name, str) or "." not in gin_name:
            continue
        plugin, version = str(prov.get("plugin", "?")), str(prov.get("version", "?"))
        kind, name = gin_name.split(".", 1)
        if name in reg.components.get(kind, {}):
            now = reg.components[kind][name]
            if (now.plugin, now.version) != (plugin, version) and "?" not in (plugin, version):
                log.warning("%s was made with %s from plugin '%s' %s; plugin '%s' %s provides it now", where,
                            gin_name, plugin, version, now.plugin, now.version)
            continue
        state = plugin_state(plugin)
        raise PluginError(f"{where} needs plugin '{plugin}' (version {version}) for {gin_name}; that plugin {state}",
                          fix=_install_fix(plugin, version))


def _install_fix(plugin: str, version: str) -> str:
    reg = get_registry()
    if plugin in reg.excluded:
        return f"add '{plugin}' to {ENV_VAR} (or unset it to load every installed plugin)"
    if any(f.plugin == plugin for f in reg.failures):
        return f"fix or reinstall plugin '{plugin}' {version} (`audiogen plugins` shows why it failed)"
    # the entry-point name is recorded, not the distribution; the template names it audiogen-NAME
    dist = f"audiogen-{plugin.replace('_', '-')}"
    return (f"install the package that provides plugin '{plugin}' version {version} (made from audiogen's template: "
            f"pip install '{dist}=={version}'), and check {ENV_VAR} does not exclude it")


# gin keeps one global registry: wrap each factory once so rebuilding our registry (tests, reloads) is safe.
_GIN_WRAPPED: dict[tuple[str, str], tuple[Callable, Callable]] = {}


def _gin_wrap(kind: str, name: str, factory: Callable) -> Callable:
    key = (kind, name)
    if key in _GIN_WRAPPED:
        original, wrapped = _GIN_WRAPPED[key]
        if original is factory:
            return wrapped
        raise PluginError(f"{kind}.{name} was already registered with gin by another factory ({original!r})")

    # Tag what the factory builds so artifacts can record which component made them.
    @functools.wraps(factory)
    def build(*args, **kwargs):
        obj = factory(*args, **kwargs)
        try:
            obj.audiogen_component = f"{kind}.{name}"
        except AttributeError:  # objects with __slots__ or frozen: nothing to record
            pass
        comp = get_registry().components.get(kind, {}).get(name)
        if _CHECKING.get() and kind in CHECKED_KINDS and comp is not None and comp.plugin != BUILTIN:
            check_component(kind, obj, {"name": f"{kind}.{name}", "plugin": comp.plugin, "version": comp.version})
        built = _BUILT.get()
        if built is not None:  # provenance: which plugin (and version) provided each component of a run
            built[f"{kind}.{name}"] = {"plugin": comp.plugin if comp else "?", "version": comp.version if comp else "?"}
        return obj

    try:  # gin reads defaults without following __wrapped__: show it the factory's, so they are recorded too
        build.__signature__ = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): gin records the bound parameters only
        pass
    wrapped = gin.external_configurable(build, name=name, module=kind)
    _GIN_WRAPPED[key] = (factory, wrapped)
    return wrapped


def _gin_unwrap(kind: str, name: str) -> None:
    """Forget a name two plugins provide, so gin reports it as unknown (explained by ``Registry.clash_for``)
    instead of silently building the first plugin's component."""
    _GIN_WRAPPED.pop((kind, name), None)
    registry = getattr(gin.config, "_REGISTRY", None)
    selector = f"{kind}.{name}"
    if registry is not None and selector in registry:  # gin has no public unregister; get() still refuses it
        registry.pop(selector)


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _entry_points():
    """(entry point, distribution version, distribution name) for group 'audiogen', each distribution once."""
    seen = set()
    for dist in md.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name in seen:
            continue
        seen.add(name)
        for ep in dist.entry_points:
            if ep.group == hookspecs.PROJECT:
                yield ep, dist.version, name


def _warn(reg: Registry, plugin: str, stage: str, exc: BaseException | str) -> None:
    err = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    reg.failures.append(Failure(plugin, stage, err))
    reg.warn(f"plugin '{plugin}' failed at {stage} and is skipped ({err})")


def _spec_args() -> dict[str, tuple[str, ...]]:
    """Hook name -> the argument names audiogen passes to it."""
    return {name: tuple(inspect.signature(fn).parameters) for name, fn in vars(hookspecs).items()
            if name.startswith("register_") and hasattr(fn, f"{hookspecs.PROJECT}_spec")}


def validate_hooks(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """What is wrong with a plugin's hooks, one line each: a hook name that is no hookspec (with the closest valid
    name) or an argument audiogen does not pass. pluggy would accept the first silently and report the second as an
    import failure."""
    specs = _spec_args()
    problems = []
    for attr in dir(plugin):
        if pm.parse_hookimpl_opts(plugin, attr) is None:
            fn = getattr(plugin, attr, None)
            if (attr.startswith("register_") and inspect.isfunction(fn)
                    and fn.__module__ == getattr(plugin, "__name__", None)):
                problems.append(f"function '{attr}' is not marked @hookimpl, so audiogen never calls it "
                                f"(add `from audiogen import hookimpl` and `@hookimpl` above it)")
            continue
        if attr not in specs:
            close = difflib.get_close_matches(attr, list(specs), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"hooks: {', '.join(specs)}"
            problems.append(f"@hookimpl '{attr}' is not an audiogen hook ({hint})")
            continue
        args = tuple(inspect.signature(getattr(plugin, attr)).parameters)
        wrong = [a for a in args if a not in specs[attr]]
        if wrong:
            problems.append(f"hook '{attr}({', '.join(args)})': audiogen calls it as "
                            f"'{attr}({', '.join(specs[attr])})'; rename the argument {', '.join(map(repr, wrong))}")
    return problems


def _check_allowed(reg: Registry, allowed: set[str] | None, found: dict[str, str]) -> None:
    """Warn about ``AUDIOGEN_PLUGINS`` names that match no installed plugin (found: entry-point name -> dist)."""
    for name in sorted((allowed or set()) - set(found) - {BUILTIN}):  # naming the built-ins is harmless
        by_dist = [ep for ep, dist in found.items() if dist.lower().replace("_", "-") == name.lower().replace("_", "-")]
        if by_dist:
            hint = f"'{name}' is the distribution; its plugin name is '{by_dist[0]}'"
        else:
            close = difflib.get_close_matches(name, list(found), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else ""
        installed = ", ".join(sorted(found)) or "none"
        msg = (f"{ENV_VAR} names '{name}', which is not an installed plugin (installed plugins: {installed})"
               + (f"; {hint}" if hint else ""))
        reg.warnings.append(msg)
        reg.warn(msg)


def make_plugin_manager(reg: Registry) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    from audiogen import __version__

    pm.register(importlib.import_module("audiogen.builtin"), name=BUILTIN)
    reg.plugins[BUILTIN] = __version__
    allowed = _allowed()
    found: dict[str, str] = {}
    for ep, version, dist in _entry_points():
        found[ep.name] = dist
        if allowed is not None and ep.name not in allowed:
            reg.excluded.append(ep.name)
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take the CLI down
            _warn(reg, ep.name, "import", exc)
            continue
        problems = validate_hooks(pm, plugin)
        if problems:
            _warn(reg, ep.name, "hook validation", "; ".join(problems))
            continue
        try:
            pm.register(plugin, name=ep.name)
            reg.plugins[ep.name] = version
        except Exception as exc:
            _warn(reg, ep.name, "registration", exc)
    reg.excluded.sort()
    _check_allowed(reg, allowed, found)
    return pm


def build_registry() -> tuple[Registry, pluggy.PluginManager]:
    """Call every plugin's register hooks. A plugin's registrations are staged and kept only if all of its hooks
    succeed, so a plugin that fails half-way is skipped whole (one warning), never half-registered."""
    reg = Registry()
    pm = make_plugin_manager(reg)
    hooks = [(kind, f"register_{kind}") for kind in KINDS] + [("config_dirs", "register_config_dirs")]
    staged: dict[str, list[tuple[str, str, object]]] = {}
    failed: set[str] = set()
    for kind, hook in hooks:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            plugin = impl.plugin_name
            if plugin in failed:
                continue
            items = staged.setdefault(plugin, [])

            def register(name, factory=None, _kind=kind, _items=items) -> None:
                if _kind == "config_dirs":  # register(path)
                    if not Path(name).is_dir():
                        raise FileNotFoundError(f"config folder {name} does not exist")
                    _items.append((_kind, "", Path(name)))
                    return
                check_name(name, kind=_kind)  # fail inside the plugin's hook, so the plugin is skipped whole
                _items.append((_kind, name, factory))

            try:
                impl.function(register=register)
            except Exception as exc:
                _warn(reg, plugin, hook, exc)
                failed.add(plugin)
    # built-ins first: their names cannot be taken by a plugin, whatever order pluggy called the hooks in
    for plugin, items in sorted(staged.items(), key=lambda kv: kv[0] != BUILTIN):
        if plugin in failed:
            reg.plugins.pop(plugin, None)
            continue
        for kind, name, obj in items:
            if kind == "config_dirs":
                reg.config_dirs.append((plugin, obj))
            else:
                reg.add(kind, name, obj, plugin)
    return reg, pm


_STATE: tuple[Registry, pluggy.PluginManager] | None = None


def get_registry() -> Registry:
    global _STATE
    if _STATE is None:
        _STATE = build_registry()
    return _STATE[0]


def get_plugin_manager() -> pluggy.PluginManager:
    get_registry()
    assert _STATE is not None
    return _STATE[1]


def register_commands(cli) -> None:
    """Let plugins add CLI commands, plugin by plugin. A failing plugin is skipped with a warning (and whatever
    it added is removed). Like components, a command built into audiogen cannot be replaced (the plugin's command is
    skipped with a warning naming both), and a command name two plugins add is dropped (a warning names both)."""
    reg = get_registry()
    builtin = dict(cli.commands)
    owner: dict[str, str] = {}  # command name -> the plugin that added it
    dropped: set[str] = set()
    for impl in get_plugin_manager().hook.register_commands.get_hookimpls():
        plugin = impl.plugin_name
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            cli.commands.clear()
            cli.commands.update(before)
            _warn(reg, plugin, "register_commands", exc)
            continue
        for name in [n for n in {**before, **cli.commands} if before.get(n) is not cli.commands.get(n)]:
            if name not in cli.commands:  # removed what audiogen or another plugin added: put it back
                cli.commands[name] = before[name]
                continue
            if name in builtin:
                msg = (f"plugin '{plugin}' registers command '{name}', a command built into audiogen: the plugin's "
                       f"command is skipped and `audiogen {name}` stays the built-in one (rename it in plugin "
                       f"'{plugin}')")
            elif name in owner or name in dropped:
                both = " and ".join(f"plugin '{p}'" for p in sorted({owner.get(name, "?"), plugin}))
                msg = (f"command '{name}' is added by both {both}: "
                       f"neither is kept (rename it in one of them, or list the plugins to load in {ENV_VAR})")
                dropped.add(name)
            else:
                owner[name] = plugin
                continue
            reg.conflicts.append(msg)
            reg.warn(msg)
            if name in builtin:
                cli.commands[name] = builtin[name]
            else:
                cli.commands.pop(name, None)
