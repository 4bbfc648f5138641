"""``python -m audiogen.plugin_template NAME FOLDER``: write, compare or update a plugin made from the template.

A new or empty FOLDER gets the plugin (as ``audiogen plugins new NAME -o FOLDER``). An existing plugin is never
changed unless asked: ``--diff`` shows what the template would change, ``--check`` exits 1 when it differs (how
audiogen keeps plugins/audiogen-example in step), and only ``--overwrite`` rewrites the template's files, always
keeping README.md, pyproject.toml (version, dependencies) and what follows ``# --- beyond the template`` in
plugin.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiogen.errors import ConfigError
from audiogen.plugin_template import (
    MARKER,
    OWNED,
    check_folder,
    diff,
    planned,
    update,
    write_plugin,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m audiogen.plugin_template", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", metavar="NAME", help="the plugin's name (lower_snake, its entry-point name)")
    ap.add_argument("folder", metavar="FOLDER", type=Path, help="the plugin's folder (holds pyproject.toml)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--diff", action="store_true", help="print what the template would change; write nothing")
    mode.add_argument("--check", action="store_true",
                      help="exit 1, listing the files, if the plugin differs from the template; write nothing")
    mode.add_argument("--overwrite", action="store_true",
                      help=f"rewrite the template's files in an existing plugin (never README.md or "
                           f"{', '.join(OWNED)}; plugin.py keeps what follows '{MARKER}')")
    args = ap.parse_args(argv)
    folder: Path = args.folder
    try:
        fresh = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
        if fresh and not (args.diff or args.check):
            if folder.exists():
                folder.rmdir()  # empty: write_plugin puts the whole package there at once
            write_plugin(args.name, folder)
            print(f"wrote plugin '{args.name}' to {folder}")
            return 0
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder", fix="name the plugin's folder (it holds pyproject.toml)")
        check_folder(args.name, folder)
        if args.diff:
            print(diff(args.name, folder) or "in step with the template", end="")
            return 0
        if args.check:
            differ = planned(args.name, folder)
            if differ:
                print(f"{folder} differs from the template in: {', '.join(differ)}\n"
                      f"see: python -m audiogen.plugin_template {args.name} {folder} --diff", file=sys.stderr)
                return 1
            print("in step with the template")
            return 0
        if not args.overwrite:
            raise ConfigError(f"{folder} already holds plugin '{args.name}': nothing written",
                              fix=f"see what the template would change with --diff; --overwrite rewrites the "
                                  f"template's files (commit your work first; README.md, pyproject.toml and what "
                                  f"follows '{MARKER}' in plugin.py are kept)")
        print("\n".join(f"rewrote {rel}" for rel in update(args.name, folder)) or "in step with the template")
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
