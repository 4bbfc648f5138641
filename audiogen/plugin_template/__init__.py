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

from audiogen.errors import ConfigError

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
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out



# A plugin made from the template may add hooks to plugin.py below this line; `update` keeps them.
MARKER = "# --- beyond the template"
KEEP = ("README.md",)  # a plugin's own description, never rewritten


def update(name: str, folder: Path) -> list[str]:
    """Rewrite the template's files in an existing plugin ``folder`` (keeping README.md and what follows
    ``MARKER`` in plugin.py); returns the relative paths that changed. Used to keep plugins/audiogen-example in
    step with the template: ``python -m audiogen.plugin_template example plugins/audiogen-example``."""
    changed = []
    for rel, text in render(name).items():
        path = Path(folder) / rel
        if rel in KEEP and path.exists():
            continue
        old = path.read_text() if path.exists() else None
        if old is not None and MARKER in old:
            text = text + "\n\n" + old[old.index(MARKER):]
        if text != old:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    return changed

