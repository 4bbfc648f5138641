"""Audio manifests: one CSV row per file with the header facts (frames, sample rate, channels), so a corpus of
hundreds of thousands of files opens without listing folders or probing a single file.

``audiogen index INPUTS -o manifest.csv`` writes one (columns ``path,frames,sample_rate,channels,subtype``; paths
relative to the manifest's folder). Reading also accepts the short names ``relpath``/``file``, ``sr``, ``ch``
(e.g. the librispeech-100-mini manifest). Any ``.csv`` input with ``path``, ``frames`` and ``sample_rate`` columns
is read as a manifest; a ``.csv`` with only a ``path`` column stays a plain list (files are probed).

A training run keeps the index of its inputs in ``RUN/index/`` (:func:`audiogen.audio.io.run_index`): written on the
first start, reused when the run resumes with the same inputs, so a resume neither rescans folders nor reprobes files.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

from audiogen.audio.info import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioInfo
from audiogen.errors import ArtifactError, AudioFileError

COLUMNS = ("path", "frames", "sample_rate", "channels", "subtype")
_ALIASES = {"path": ("path", "relpath", "file", "filename"), "frames": ("frames", "num_frames"),
            "sample_rate": ("sample_rate", "sr", "samplerate"), "channels": ("channels", "ch"),
            "subtype": ("subtype",)}
REQUIRED = ("path", "frames", "sample_rate")


def manifest_columns(header: Sequence[str]) -> dict[str, int] | None:
    """Column index of each manifest field in a CSV header; None unless path, frames and sample_rate are there."""
    names = [h.strip().lower() for h in header]
    cols = {}
    for field, aliases in _ALIASES.items():
        for a in aliases:
            if a in names:
                cols[field] = names.index(a)
                break
    return cols if all(f in cols for f in REQUIRED) else None


def parse_rows(manifest: Path, rows: Iterable[tuple[list[str], int]], cols: dict[str, int]) -> list:
    """AudioInfo of each (row, line number) of a manifest. Paths are joined to the manifest's folder without
    touching the file system (no stat, no resolve): opening stays O(rows) with small constants."""
    base = os.path.abspath(manifest.parent) + os.sep
    ip, iframes, isr = cols["path"], cols["frames"], cols["sample_rate"]
    ich, isub = cols.get("channels"), cols.get("subtype")
    width = max(cols.values()) + 1
    infos = []
    for row, line in rows:
        if len(row) < width or not row[ip].strip():
            raise AudioFileError(f"manifest {manifest}, line {line}: expected {width} columns, got {len(row)}",
                                 path=manifest, fix="rewrite it with `audiogen index`")
        try:
            frames, sr = int(row[iframes]), int(row[isr])
            channels = int(row[ich]) if ich is not None else 1
        except ValueError:
            raise AudioFileError(f"manifest {manifest}, line {line}: frames, sample_rate and channels must be "
                                 f"integers, got {[row[i] for i in (iframes, isr, ich) if i is not None]}",
                                 path=manifest, fix="rewrite it with `audiogen index`") from None
        if frames <= 0 or channels <= 0 or not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
            raise AudioFileError(f"manifest {manifest}, line {line}: frames={frames}, sample_rate={sr}, "
                                 f"channels={channels}; frames and channels must be positive and the sample rate "
                                 f"in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}", path=manifest,
                                 fix="drop empty files from the manifest, or rewrite it with `audiogen index`")
        entry = row[ip].strip()
        if entry.startswith("~"):
            entry = os.path.expanduser(entry)
        # one Path per row, built from a joined string (pathlib's parsing is most of the cost at 200k rows)
        infos.append(AudioInfo(path=Path(entry if os.path.isabs(entry) else base + entry), sample_rate=sr,
                               frames=frames, channels=channels,
                               subtype=row[isub].strip() if isub is not None else "unknown"))
    if infos and not infos[0].path.exists():  # one stat catches a manifest moved away from its files
        raise AudioFileError(f"manifest {manifest}: its first file {infos[0].path} does not exist", path=manifest,
                             fix="paths in a manifest are relative to the manifest's folder (or absolute); move it "
                                 "beside the audio or rewrite it with `audiogen index`")
    return infos


def read_manifest(path: str | os.PathLike) -> list:
    """The AudioInfo rows of a manifest CSV (see the module doc for the columns)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AudioFileError(f"cannot read manifest {path}: {err}", path=path,
                             fix="check the file (it must be UTF-8 CSV)") from err
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, [])
        cols = manifest_columns(header)
        if cols is None:
            raise AudioFileError(f"{path} is not a manifest: its header {header} lacks "
                                 f"{', '.join(REQUIRED)} columns", path=path,
                                 fix="write one with `audiogen index INPUTS -o manifest.csv`")
        return parse_rows(path, nonblank_rows(reader), cols)
    except csv.Error as err:
        raise AudioFileError(f"manifest {path} is not valid CSV (line {reader.line_num}: {err})", path=path,
                             fix="rewrite it with `audiogen index`") from None


def nonblank_rows(reader):
    """(row, line number) of a csv reader's rows that hold anything (list files and manifests alike)."""
    return ((row, reader.line_num) for row in reader if row and (len(row) > 1 or row[0].strip()))


def write_manifest(path: str | os.PathLike, infos: Sequence) -> Path:
    """Write ``infos`` atomically as a manifest; paths under the manifest's folder are stored relative to it."""
    from audiogen.artifacts import atomic_write_text

    path = Path(path)
    base = os.path.abspath(path.parent)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for i in infos:
        p = os.path.abspath(i.path)
        rel = os.path.relpath(p, base) if p.startswith(base + os.sep) else p
        w.writerow([rel, i.frames, i.sample_rate, i.channels, i.subtype])
    try:
        atomic_write_text(path, buf.getvalue())
    except OSError as exc:
        raise ArtifactError(f"cannot write manifest {path} ({exc.strerror or exc})",
                            fix="choose a writable location for -o") from None
    return path
