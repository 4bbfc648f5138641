"""gin composition: config files found by name, bindings, operative configs saved and re-applied.

Search order for ``--gin NAME``: an existing path; then folders in ``AUDIOGEN_GIN_PATH`` (os.pathsep-separated);
then the configs shipped in the package (``audiogen/gin/``, by kind); then folders
registered by plugins. A name found in two folders of the same rank is an error naming both.

Layering when an artifact is reused: its saved operative config first, then ``--gin`` files in order, then
``--bind`` strings in order (later wins).

A saved operative config comes from an artifact someone else may have made, so it is data, not code: it is read
statement by statement without executing anything (``check_stored``) and parsed only if every binding and reference
names an audiogen configurable or an installed plugin component. ``--gin`` files and ``--bind`` strings are the
user's own and keep full gin (imports included).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import tokenize
from pathlib import Path
from typing import Sequence

import gin
from gin import config_parser

from audiogen.errors import ArtifactError, AudiogenError, ConfigError
from audiogen.plugins import KINDS, PACKAGE, get_registry

GIN_PATH_ENV = "AUDIOGEN_GIN_PATH"

# What gin raises for a malformed file or binding: its own parse errors (SyntaxError), unknown names (ValueError,
# KeyError), an unclosed bracket (tokenize.TokenError), an `import` of a missing module (ImportError), nesting deeper
# than Python's recursion limit (RecursionError: gin's parser is recursive descent).
_GIN_ERRORS = (ValueError, KeyError, SyntaxError, TypeError, tokenize.TokenError, ImportError, RecursionError)


def _quiet_gin_search(record: logging.LogRecord) -> bool:
    """gin logs every folder it tries for an include on the root logger; only real failures matter (we raise)."""
    return not (record.pathname.endswith("resource_reader.py") and "gin" in record.pathname)


logging.getLogger().addFilter(_quiet_gin_search)

# gin also looks an include up as a file inside an importable package ('data/x.gin' -> package `data`). With the
# working directory on sys.path (`python -m`, `python -c`, a notebook), a plain folder named `data/` or `pipelines/`
# there is a namespace package without a file and gin crashes with a TypeError. audiogen finds configs through its
# own search folders (`search_dirs`), so that reader goes.
gin.config._FILE_READERS[:] = [(r, e) for r, e in gin.config._FILE_READERS
                               if getattr(r, "__module__", "") != "gin.resource_reader"]


def packaged_config_dir() -> Path:
    """The shipped configs: ``audiogen/gin`` (package data, one folder per kind)."""
    d = Path(__file__).resolve().parent / "gin"
    if not (d / "pipelines").is_dir():
        raise ConfigError(f"the shipped gin configs are missing (looked in {d})", fix="reinstall audiogen")
    return d


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


def listing() -> list[tuple[str, Path | None, list[str]]]:
    """Every config found by name: (name, the file it resolves to or None when ambiguous, notes), where notes say
    which lower-ranked files it shadows (a plugin's gin file with a shipped name is never used) or why it is
    ambiguous."""
    owner = {d: f"plugin '{plugin}'" for plugin, d in get_registry().config_dirs}
    rows = []
    for name in available_configs():
        found = [(owner.get(d, label), label, d / name) for label, dirs in search_dirs() for d in dirs
                 if (d / name).is_file()]
        rank = found[0][1]
        winners = [path for _, label, path in found if label == rank]
        notes = [f"shadows {who} file {path}" for who, label, path in found if label != rank]
        if len(winners) > 1:
            notes.insert(0, "ambiguous among " + ", ".join(map(str, winners)) + ": pass the file by its full path")
        rows.append((name, winners[0].resolve() if len(winners) == 1 else None, notes))
    return rows


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
    raise ConfigError(f"no gin file '{name}' (not a path, and not found by name).{hint}{_skipped_note(rel)}",
                      fix="run `audiogen configs` to list the shipped configs, or pass a path")


def _skipped_note(name: str) -> str:
    """What an unknown name or gin file may owe to plugins that did not load: a plugin named like the file's
    folder (plugins ship ``NAME/....gin``), or the list of skipped plugins."""
    from audiogen.plugins import plugin_state, skipped_plugins

    skipped = skipped_plugins()
    if not skipped:
        return ""
    owner = name.split("/", 1)[0] if "/" in name else None
    reg = get_registry()
    if owner and (owner in reg.excluded or any(f.plugin == owner for f in reg.failures)):
        return f"\n  plugin '{owner}' {plugin_state(owner)}: its gin files are found only when it loads"
    return "\n  " + "\n  ".join(f"note: {line}" for line in skipped)


def _known_configurables() -> list[str]:
    # gin has no public listing of its registry; fall back to our components if the private one moves.
    try:
        return sorted(name for name, _ in gin.config._REGISTRY.items())
    except AttributeError:  # pragma: no cover
        reg = get_registry()
        return sorted(c.gin_name for kind in reg.components.values() for c in kind.values())


_NO_CONFIGURABLE = re.compile(r"No configurable matching (?:reference )?'@?([\w.]+)(?:\(\))?'")
_NO_PARAMETER = re.compile(r"Configurable '([\w.]+)' doesn't have a parameter named '(\w+)'")
_NO_INCLUDE = re.compile(r"Unable to open file: (.+?)\. Searched config paths")


def _short(text: str, limit: int = 200) -> str:
    """A line quoted in a message, cut to ``limit`` characters (a stored or given line may be megabytes long)."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _explain(exc: Exception, source: str) -> AudiogenError:
    """Turn gin's error into one that lists close matches."""
    if isinstance(exc, tokenize.TokenError):  # str() is a tuple repr: ('EOF in multi-line statement', (2, 0))
        return ConfigError(f"unclosed bracket or quote in {source} ({exc.args[0]})",
                           fix="close every [, ( and { and every quote")
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    where = "\n  ".join(text.splitlines()[1:])
    m = _NO_INCLUDE.search(text)
    if m:  # an `include` line naming a config that no search folder has
        close = difflib.get_close_matches(m.group(1), available_configs(), n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "no close matches"
        return ConfigError(f"include '{m.group(1)}' in {source} names no gin file ({hint})\n  {where}",
                           fix="run `audiogen configs` to list the configs found by name")
    m = _NO_CONFIGURABLE.search(text)
    if m:
        wanted = m.group(1)
        clash = get_registry().clash_for(wanted)
        if clash is not None:  # two plugins provide it: gin only sees that it is missing
            return clash
        known = _known_configurables()
        close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
        close += [k for k in known if k.endswith("." + wanted.split(".")[-1]) and k not in close][:3]
        hint = f"close matches: {', '.join(close)}" if close else "no close matches"
        return ConfigError(f"unknown name '{wanted}' in {source} ({hint})\n  {where}{_skipped_note(wanted)}",
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


def _import_core() -> None:
    """Declare audiogen's own configurables that are no component (``audio``, ``train``, ``pipeline``, ...);
    components (objectives and annealing schedules included) come from the registry."""
    from audiogen import model, settings  # noqa: F401


def _add_search_paths() -> None:
    for _, dirs in search_dirs():
        for d in dirs:
            if d.is_dir() and str(d) not in getattr(gin.config, "_LOCATION_PREFIXES", ()):
                gin.add_config_file_search_path(str(d))


class _References(config_parser.ParserDelegate):
    """Records each ``@reference`` met inside a value (lists and dicts nest) with its line; builds nothing."""

    def __init__(self):
        self.parser: config_parser.ConfigParser | None = None
        self.found: list[tuple[str, int]] = []

    def configurable_reference(self, scoped_configurable_name, evaluate):
        self.found.append((scoped_configurable_name, self.parser.current_token.start[0]))

    def macro(self, macro_name):  # %NAME reads a value bound in the same config: data
        return None


def _allowed(selector: str) -> bool:
    """An audiogen configurable (settings, pipeline) or a registered component (objectives and anneal.* too)."""
    try:
        match = gin.config._REGISTRY.get_match(selector)
    except KeyError:  # ambiguous: gin would refuse it too
        return False
    if match is None:
        return False
    components = {c.gin_name for kind in get_registry().components.values() for c in kind.values()}
    return match.selector in components or match.module.partition(".")[0] == PACKAGE


def check_stored(text: str, source: str) -> None:
    """Refuse a stored operative config that is more than bindings of allow-listed configurables and macros:
    imports (dynamic registration included), includes, and selectors or references outside the allow-list are an
    ArtifactError naming ``source`` and the line. Nothing in ``text`` is executed."""
    lines = text.splitlines()

    def refuse(line_num: int, what: str, name: str = ""):
        line_num = min(line_num, len(lines))  # an unclosed bracket is reported past the last line
        line = _short(lines[line_num - 1].strip()) if line_num > 0 else ""
        # a component name (<kind>.<name>) may be missing because its plugin did not load: say which did not
        note = _skipped_note(name) if name.split(".", 1)[0] in KINDS else ""
        return ArtifactError(f"the operative config stored in {source} {what} (line {line_num}: {line}){note}",
                             fix="stored configs may only bind audiogen configurables and installed plugin "
                                 "components; do not use an artifact that was edited or made by another tool "
                                 "(a config you trust can be passed as a file with --gin)")

    refs = _References()
    try:
        parser = config_parser.ConfigParser(text, refs)
        refs.parser = parser
        for st in parser:
            if isinstance(st, config_parser.ImportStatement):
                raise refuse(st.location.line_num, "imports code")
            if isinstance(st, config_parser.IncludeStatement):
                raise refuse(st.location.line_num, "includes another file")
            macro = isinstance(st, config_parser.BindingStatement) and not st.arg_name
            if not macro and not _allowed(st.selector):
                raise refuse(st.location.line_num, f"binds '{st.selector}', which is not an audiogen configurable "
                                                   "or an installed plugin component", st.selector)
            for name, line_num in refs.found:
                if not _allowed(name.rsplit("/", 1)[-1]):
                    raise refuse(line_num, f"references '@{name}', which is not an audiogen configurable or an "
                                           "installed plugin component", name.rsplit("/", 1)[-1])
            refs.found.clear()
    except RecursionError:
        token = getattr(refs.parser, "current_token", None)
        raise refuse(token.start[0] if token else 0, "is not valid gin (nested too deeply)") from None
    except (SyntaxError, ValueError, tokenize.TokenError) as exc:
        where = exc.args[1] if isinstance(exc, tokenize.TokenError) and len(exc.args) > 1 else None
        line_num = getattr(exc, "lineno", None) or (where[0] if isinstance(where, tuple) else 0)
        detail = exc.args[0] if isinstance(exc, tokenize.TokenError) else (str(exc).splitlines() or [""])[0]
        raise refuse(line_num, f"is not valid gin ({detail})") from None


def parse(gin_files: Sequence[str] = (), bindings: Sequence[str] = (), base: str | None = None,
          clear: bool = True, base_source: str = "an artifact") -> None:
    """Load plugins, then parse ``base`` (a saved operative config, read from ``base_source``; checked first by
    ``check_stored``), the files, and the bindings."""
    get_registry().check()  # plugins load (and register configurables) before gin parses
    _import_core()
    _add_search_paths()
    if base:
        check_stored(base, base_source)
    if clear:
        gin.clear_config()
    with gin.unlock_config():
        if base:
            try:
                gin.parse_config(base)
            except Exception as exc:
                raise _explain(exc, f"the operative config stored in {base_source}") from None
        for name in gin_files:
            path = resolve(name)
            try:
                gin.parse_config_file(str(path))
            except (*_GIN_ERRORS, OSError) as exc:
                raise _explain(exc, f"gin file {path}") from None
        for b in bindings:
            try:
                gin.parse_config(b)
            except _GIN_ERRORS as exc:
                raise _explain(exc, f"binding {_short(repr(b))}") from None


def operative_config() -> str:
    """The parameters actually used so far, as gin text (what artifacts store).

    Components are written with their full ``<kind>.<name>`` (gin would shorten ``encoders.log_mel`` to
    ``log_mel``, which a plugin installed later could make ambiguous).
    """
    registry = getattr(gin.config, "_REGISTRY", None)
    shorten = getattr(registry, "minimal_selector", None)
    if shorten is None:  # pragma: no cover - gin internals moved; fall back to gin's own names
        return gin.operative_config_str()

    def minimal(selector: str) -> str:
        return selector if selector.split(".", 1)[0] in KINDS else shorten(selector)

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
