"""gin composition: config files found by name, bindings, operative configs saved and re-applied.

Search order for ``--gin NAME``: an existing path; then folders in ``AUDIOGEN_GIN_PATH`` (os.pathsep-separated);
then the configs shipped in the package (``audiogen.gin``, the repository's top-level ``gin/``); then folders
registered by plugins. A name found in two folders of the same rank is an error naming both.

Layering when an artifact is reused: its saved operative config first, then ``--gin`` files in order, then
``--bind`` strings in order (later wins).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
from pathlib import Path
from typing import Sequence

import gin
from audiogen.errors import ConfigError
from audiogen.plugins import get_registry

GIN_PATH_ENV = "AUDIOGEN_GIN_PATH"


def _quiet_gin_search(record: logging.LogRecord) -> bool:
    """gin logs every folder it tries for an include on the root logger; only real failures matter (we raise)."""
    return not (record.pathname.endswith("resource_reader.py") and "gin" in record.pathname)


logging.getLogger().addFilter(_quiet_gin_search)


def packaged_config_dir() -> Path:
    """The shipped configs: ``audiogen/gin`` in an installed wheel, the top-level ``gin/`` in a source tree."""
    import audiogen

    pkg = Path(audiogen.__file__).parent
    for cand in (pkg / "gin", pkg.parent / "gin"):
        if (cand / "pipelines").is_dir():
            return cand
    raise ConfigError(f"the shipped gin configs are missing (looked in {pkg / 'gin'} and {pkg.parent / 'gin'})",
                      fix="reinstall audiogen")


def search_dirs() -> list[tuple[str, list[Path]]]:
    """Ranks of config folders, highest priority first: (label, folders)."""
    user = [Path(p) for p in os.environ.get(GIN_PATH_ENV, "").split(os.pathsep) if p]
    plugin_dirs = [d for _, d in get_registry().config_dirs]
    return [("user", user), ("audiogen", [packaged_config_dir()]), ("plugins", plugin_dirs)]


def available_configs() -> list[str]:
    names = set()
    for _, dirs in search_dirs():
        for d in dirs:
            if d.is_dir():
                names.update(p.relative_to(d).as_posix() for p in d.rglob("*.gin"))
    return sorted(names)


def resolve(name: str | os.PathLike) -> Path:
    """Path of a gin file given by path or by name (``pipelines/conv_ae.gin``, ``.gin`` optional)."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    rel = str(name) if str(name).endswith(".gin") else f"{name}.gin"
    for label, dirs in search_dirs():
        hits = [d / rel for d in dirs if (d / rel).is_file()]
        if len(hits) > 1:
            raise ConfigError(f"gin file '{rel}' is ambiguous among {label} config folders: "
                              + ", ".join(map(str, hits)), fix="pass the file by its full path")
        if hits:
            return hits[0].resolve()
    close = difflib.get_close_matches(rel, available_configs(), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(f"no gin file '{name}' (not a path, and not found by name).{hint}",
                      fix="run `audiogen configs` to list the shipped configs, or pass a path")


def _known_configurables() -> list[str]:
    # gin has no public listing of its registry; fall back to our components if the private one moves.
    try:
        return sorted(name for name, _ in gin.config._REGISTRY.items())
    except AttributeError:  # pragma: no cover
        reg = get_registry()
        return sorted(c.gin_name for kind in reg.components.values() for c in kind.values())


_NO_CONFIGURABLE = re.compile(r"No configurable matching (?:reference )?'@?([\w.]+)(?:\(\))?'")
_NO_PARAMETER = re.compile(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'")


def _explain(exc: Exception, source: str) -> ConfigError:
    """Turn gin's error into one that lists close matches."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    where = "\n  ".join(text.splitlines()[1:])
    m = _NO_CONFIGURABLE.search(text)
    if m:
        wanted = m.group(1)
        known = _known_configurables()
        close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
        close += [k for k in known if k.endswith("." + wanted.split(".")[-1]) and k not in close][:3]
        hint = f"close matches: {', '.join(close)}" if close else "no close matches"
        return ConfigError(f"unknown name '{wanted}' in {source} ({hint})\n  {where}",
                           fix="run `audiogen plugins` for component names (gin name <kind>.<name>)")
    m = _NO_PARAMETER.search(text)
    if m:
        conf, param = m.groups()
        params = _parameters_of(conf)
        close = difflib.get_close_matches(param, params, n=3, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else f"parameters: {', '.join(params)}"
        return ConfigError(f"'{conf}' has no parameter '{param}' in {source} ({hint})\n  {where}")
    return ConfigError(f"{first} in {source}\n  {where}".rstrip())


def _parameters_of(selector: str) -> list[str]:
    import inspect

    try:
        fn = gin.config._REGISTRY.get_match(selector).wrapped
        return [p for p in inspect.signature(fn).parameters if p not in ("self", "args", "kwargs")]
    except Exception:  # pragma: no cover - best effort for the hint only
        return []


CORE_CONFIGURABLES = ("audiogen.settings", "audiogen.pipeline", "audiogen.objectives", "audiogen.objectives_cpc",
                      "audiogen.annealing")


def _import_core() -> None:
    """Import the modules that define the non-component configurables (pipeline, audio, train, ...)."""
    import importlib

    for mod in CORE_CONFIGURABLES:
        importlib.import_module(mod)


def _add_search_paths() -> None:
    for _, dirs in search_dirs():
        for d in dirs:
            if d.is_dir() and str(d) not in getattr(gin.config, "_LOCATION_PREFIXES", ()):
                gin.add_config_file_search_path(str(d))


def parse(gin_files: Sequence[str] = (), bindings: Sequence[str] = (), base: str | None = None,
          clear: bool = True) -> None:
    """Load plugins, then parse ``base`` (a saved operative config), the files, and the bindings."""
    get_registry().check()  # plugins load (and register configurables) before gin parses
    _import_core()
    _add_search_paths()
    if clear:
        gin.clear_config()
    with gin.unlock_config():
        if base:
            try:
                gin.parse_config(base)
            except Exception as exc:
                raise _explain(exc, "the saved operative config") from None
        for name in gin_files:
            path = resolve(name)
            try:
                gin.parse_config_file(str(path))
            except (ValueError, KeyError, SyntaxError, TypeError, IOError) as exc:
                raise _explain(exc, f"gin file {path}") from None
        for b in bindings:
            try:
                gin.parse_config(b)
            except (ValueError, KeyError, SyntaxError, TypeError) as exc:
                raise _explain(exc, f"binding {b!r}") from None


def operative_config() -> str:
    """The parameters actually used so far, as gin text (what artifacts store).

    Components are written with their full ``<kind>.<name>`` (gin would shorten ``encoders.log_mel`` to
    ``log_mel``, which a plugin installed later could make ambiguous).
    """
    from audiogen.plugins import KINDS

    registry = getattr(gin.config, "_REGISTRY", None)
    shorten = getattr(registry, "minimal_selector", None)
    if shorten is None:  # pragma: no cover - gin internals moved; fall back to gin's own names
        return gin.operative_config_str()

    def minimal(selector: str) -> str:
        return selector if selector.split(".", 1)[0] in KINDS + ("anneal",) else shorten(selector)

    registry.minimal_selector = minimal
    try:
        return gin.operative_config_str()
    finally:
        del registry.minimal_selector  # back to the class's method


def query(selector: str, default=None):
    try:
        return gin.query_parameter(selector)
    except ValueError:
        return default


@contextlib.contextmanager
def isolated():
    """Parse and build something else (e.g. the autoencoder that decodes a prior's samples while it trains) and
    come back to the current gin config and its operative record unchanged: checkpoints written later still
    record the run's own config."""
    from gin import config as g

    saved = {name: {k: (dict(v) if isinstance(v, dict) else v) for k, v in getattr(g, name).items()}
             for name in ("_CONFIG", "_OPERATIVE_CONFIG", "_SINGLETONS")}
    imports = set(g._IMPORTS)
    locked = g.config_is_locked()
    try:
        yield
    finally:
        for name, value in saved.items():
            getattr(g, name).clear()
            getattr(g, name).update(value)
        g._IMPORTS.clear()
        g._IMPORTS.update(imports)
        g._set_config_is_locked(locked)
