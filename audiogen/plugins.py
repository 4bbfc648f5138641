"""Plugin loading and the component registry.

Built-ins (``audiogen.builtin``) and third-party packages (entry-point group ``audiogen``) register through the
same hooks. A plugin that fails to import or to register is skipped with one warning naming it; two providers of
the same kind/name are an error naming both. ``AUDIOGEN_PLUGINS`` (comma-separated entry-point names) restricts
which third-party plugins load: unset loads all, an empty value loads none.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import importlib
import importlib.metadata as md
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy

import gin
from audiogen import hookspecs
from audiogen.errors import PluginError

log = logging.getLogger("audiogen")

ENV_VAR = "AUDIOGEN_PLUGINS"
BUILTIN = "audiogen"
# gin names of audiogen's own configurables; a component of the same name would make bindings ambiguous.
RESERVED = ("audio", "train", "train_prior", "encode", "pipeline", "spectral_loss", "elbo", "infonce", "evaluate",
            "sample")
KINDS = ("encoders", "decoders", "priors", "distributions", "schedules", "codings", "datasets")


def check_name(name) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"component name must be an identifier, got {name!r}")
    if name in RESERVED:
        raise ValueError(f"component name '{name}' is reserved for audiogen's own settings ({', '.join(RESERVED)})")


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
    conflicts: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, factory: Callable, plugin: str) -> None:
        check_name(name)
        existing = self.components[kind].get(name)
        if existing is not None:
            self.conflicts.append(
                f"{kind[:-1]} '{name}' is provided by both plugin '{existing.plugin}' and plugin '{plugin}'"
            )
            return
        self.components[kind][name] = Component(kind, name, _gin_wrap(kind, name, factory), plugin,
                                                self.plugins.get(plugin, "?"))

    def check(self) -> None:
        """Raise if plugins conflict; called before any component is used."""
        if self.conflicts:
            raise PluginError(
                "conflicting plugins: " + "; ".join(self.conflicts),
                fix=f"uninstall one of them, or list the plugins to load in {ENV_VAR} (comma-separated)",
            )

    def get(self, kind: str, name: str) -> Component:
        self.check()
        if kind not in self.components:
            raise PluginError(f"unknown component kind '{kind}'; kinds: {', '.join(KINDS)}")
        try:
            return self.components[kind][name]
        except KeyError:
            known = sorted(self.components[kind])
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known) or 'none'}"
            raise PluginError(f"no {kind[:-1]} named '{name}' ({hint})",
                              fix="run `audiogen plugins` to list components") from None

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


@contextlib.contextmanager
def recording_builds():
    """Collect every component gin builds inside the block: {gin name: {"plugin", "version"}} (what runs record)."""
    token = _BUILT.set({})
    try:
        yield _BUILT.get()
    finally:
        _BUILT.reset(token)


def check_provenance(built: dict, where: str) -> None:
    """Refuse, before gin reads a saved config, a run whose components came from a plugin that is not loaded:
    "needs plugin X (version Y)" rather than gin's unknown-name error."""
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
        state = "is not installed" if plugin not in reg.plugins else f"(version {reg.plugins[plugin]}) no longer " \
            f"provides it"
        raise PluginError(f"{where} needs plugin '{plugin}' (version {version}) for {gin_name}; that plugin {state}",
                          fix=f"install it (pip install '{plugin}=={version}'), and check {ENV_VAR} does not "
                              f"exclude it")


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
        built = _BUILT.get()
        if built is not None:  # provenance: which plugin (and version) provided each component of a run
            comp = get_registry().components.get(kind, {}).get(name)
            built[f"{kind}.{name}"] = {"plugin": comp.plugin if comp else "?", "version": comp.version if comp else "?"}
        return obj

    wrapped = gin.external_configurable(build, name=name, module=kind)
    _GIN_WRAPPED[key] = (factory, wrapped)
    return wrapped


def _allowed() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _entry_points():
    """(entry point, distribution version) for group 'audiogen', each distribution once."""
    seen = set()
    for dist in md.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name in seen:
            continue
        seen.add(name)
        for ep in dist.entry_points:
            if ep.group == hookspecs.PROJECT:
                yield ep, dist.version


def _warn(reg: Registry, plugin: str, stage: str, exc: BaseException) -> None:
    err = f"{type(exc).__name__}: {exc}"
    reg.failures.append(Failure(plugin, stage, err))
    log.warning("plugin '%s' failed at %s and is skipped (%s)", plugin, stage, err)


def make_plugin_manager(reg: Registry) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    from audiogen import __version__

    pm.register(importlib.import_module("audiogen.builtin"), name=BUILTIN)
    reg.plugins[BUILTIN] = __version__
    allowed = _allowed()
    for ep, version in _entry_points():
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            reg.plugins[ep.name] = version
        except Exception as exc:  # a broken plugin must not take the CLI down
            _warn(reg, ep.name, "import", exc)
    return pm


def _call_each(reg: Registry, pm: pluggy.PluginManager, hook_name: str, **kwargs) -> None:
    """Call one hook plugin by plugin, so an exception is pinned on (and isolates) its plugin."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            impl.function(**kwargs)
        except Exception as exc:
            _warn(reg, impl.plugin_name, hook_name, exc)


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
                check_name(name)  # fail inside the plugin's hook, so the plugin is skipped whole
                _items.append((_kind, name, factory))

            try:
                impl.function(register=register)
            except Exception as exc:
                _warn(reg, plugin, hook, exc)
                failed.add(plugin)
    for plugin, items in staged.items():
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
    """Let plugins add CLI commands; a failing plugin is skipped with a warning."""
    reg = get_registry()
    _call_each(reg, get_plugin_manager(), "register_commands", cli=cli)
