"""``audiogen index``: a manifest CSV (path, frames, sample_rate, channels, subtype) of audio inputs, which every
command takes as an input list and training opens without listing folders or probing files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiogen.audio.info import AudioInfo


@dataclass
class Indexed:
    infos: list[AudioInfo]  # the files listed
    failed: list[dict] = field(default_factory=list)  # skipped inputs: {"source", "reason"}


def index(inputs: Sequence[str], out: Path, strict: bool = False, overwrite: bool = False) -> Indexed:
    """Probe every input and write the manifest ``out``; unreadable files are skipped (``strict``: one error
    listing every unreadable or truncated file)."""
    from audiogen.artifacts import check_output
    from audiogen.audio.io import bad_files_error, index_inputs
    from audiogen.audio.manifest import write_manifest
    from audiogen.errors import AudiogenError

    check_output(out, overwrite, inputs, folder=False, what="manifest")
    failed: list[dict] = []
    infos = index_inputs(list(inputs), failed=failed)  # every input probed: strict lists all bad ones
    if strict:  # a truncated copy fails as encode --strict fails it
        failed += [{"source": str(i.path), "reason": f"{i.path}: {w}"} for i in infos for w in i.warnings]
        if failed:
            raise bad_files_error(failed)
    if not infos:
        raise AudiogenError("no input file could be read:\n  " + "\n  ".join(e["reason"] for e in failed[:5]))
    write_manifest(out, infos)
    return Indexed(infos, failed)
