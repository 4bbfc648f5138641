"""Reading, writing and resampling audio files, and turning user inputs into a list of files.

Every failure a user can cause (missing, empty, corrupt or mismatched files) is raised as
:class:`~audiogen.errors.AudioFileError` naming the file and saying how to fix it, so the CLI
can print it without a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
import soxr

from audiogen.artifacts import atomic_write_bytes
from audiogen.audio.info import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioInfo
from audiogen.audio.manifest import manifest_columns, nonblank_rows, parse_rows, read_manifest, write_manifest
from audiogen.errors import AudioFileError, AudiogenError

log = logging.getLogger("audiogen")

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
LIST_EXTENSIONS = (".txt", ".lst", ".csv")

# soundfile raises these for unreadable / malformed data (LibsndfileError is a RuntimeError).
_SF_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, TypeError)

# Format chosen by save_audio from the file extension.
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}

# A float file whose samples go beyond +-CLIP_WARN_PEAK is reported as clipped (smaller overshoots are rounding).
CLIP_WARN_PEAK = 1.01
# Bytes per frame and channel of uncompressed subtypes; compressed ones need at least 1 byte per
# _MIN_COMPRESSED_FRAMES frames (a FLAC of digital silence takes about 1 byte per 300 frames).
_SUBTYPE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                  "ULAW": 1, "ALAW": 1}
_MIN_COMPRESSED_FRAMES = 8192
_COMPRESSED_FORMATS = ("FLAC", "OGG", "MP3", "MPEG")  # soundfile names MP3 files "MP3"  # their subtype names the decoded sample width (FLAC: PCM_16)
# libsndfile's log line for a chunk cut short: "data : 64000 (should be 31978)"
_CUT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Extra source samples read on each side of a crop so the resampling filter sees real context
# instead of the chunk edges.
_RESAMPLE_CONTEXT = 256
# Largest source step we align crops to (keeps crop positions sample-exact for usual rates).
_MAX_ALIGN_STEP = 4096


def _reason(err: BaseException) -> str:
    # LibsndfileError.error_string is the bare reason, without the "Error opening '...'" prefix.
    return str(getattr(err, "error_string", None) or err).strip()


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file, checking that it exists, is audio and has samples."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"audio file {path} does not exist", path=path,
                             fix="check the path (relative paths are resolved from the current folder)")
    if path.is_dir():
        raise AudioFileError(f"{path} is a directory, not an audio file", path=path,
                             fix="pass the directory as an input folder, or name a file inside it")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise AudioFileError(f"cannot access {path}: {err.strerror}", path=path,
                             fix="check the file permissions") from err
    if size == 0:
        raise AudioFileError(f"{path} is empty (0 bytes)", path=path,
                             fix="remove the file or re-export it")
    try:
        info = sf.info(str(path))
    except _SF_ERRORS as err:
        raise AudioFileError(f"{path} is not a readable audio file (soundfile: {_reason(err)})", path=path,
                             fix=f"remove the file or convert it to one of {', '.join(AUDIO_EXTENSIONS)}") from err
    except OSError as err:
        raise AudioFileError(f"cannot read {path}: {err}", path=path, fix="check the file permissions") from err
    if info.frames <= 0:
        raise AudioFileError(f"{path} contains no samples", path=path, fix="remove the file from the inputs")
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        # a damaged header: 1 Hz resampled to 16 kHz would turn a 1 MB file into 16 GB of samples
        raise AudioFileError(f"{path} claims a sample rate of {info.samplerate} Hz, outside the "
                             f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz audiogen reads (damaged header?)", path=path,
                             fix="re-export the file at an audio sample rate")
    return AudioInfo(path=path, sample_rate=int(info.samplerate), frames=int(info.frames),
                     channels=int(info.channels), subtype=str(info.subtype),
                     warnings=_check_claim(path, size, info))


def _check_claim(path: Path, size: int, info) -> tuple[str, ...]:
    """Compare the header's claim with the file size: a header promising more audio than the file can hold is
    damaged (an AudioFileError); a data chunk cut short (libsndfile reads what is there) is a truncated copy
    (a warning)."""
    sr, frames = int(info.samplerate), int(info.frames)
    per_frame = None if info.format in _COMPRESSED_FORMATS else _SUBTYPE_BYTES.get(str(info.subtype))
    need = frames * info.channels * per_frame if per_frame else frames // _MIN_COMPRESSED_FRAMES
    if need > size:
        raise AudioFileError(f"{path} claims {_span(frames / sr)} of audio in {size} bytes, more than the file can "
                             f"hold (damaged header?)", path=path, fix="re-export the file, or remove it")
    cut = _CUT_CHUNK.search(getattr(info, "extra_info", "") or "")
    if cut and int(cut.group(1)) > int(cut.group(2)) > 0:
        claimed = frames * int(cut.group(1)) / int(cut.group(2)) / sr
        return (f"truncated: the header promises {_span(claimed)} but the file holds {_span(frames / sr)} (a copy "
                f"cut short?); the {_span(frames / sr)} present are used",)
    return ()


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.2f} s"


def clip_warning(clipped: list[tuple[int, float]]) -> str | None:
    """One warning for the (count, peak) pairs ``load_audio(clipped=...)`` collected over a file's reads."""
    if not clipped:
        return None
    count, peak = sum(c for c, _ in clipped), max(p for _, p in clipped)
    return (f"{count} samples beyond [-1, 1] (peak {peak:.2f}) were clipped when read (a float file scaled "
            f"beyond full scale?)")


def frames_at_rate(frames: int, sr_in: int, sr_out: int) -> int:
    """Number of samples ``frames`` source samples become after resampling (round half up)."""
    if sr_in == sr_out:
        return frames
    return (frames * sr_out + sr_in // 2) // sr_in


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the first axis with soxr ("HQ"); returns float32. Identity when rates match."""
    x = np.asarray(x, dtype=np.float32)
    if sr_in == sr_out:
        return x
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if x.shape[0] == 0:
        return x
    return np.asarray(soxr.resample(x, sr_in, sr_out, quality="HQ"), dtype=np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad (at the end) a 1-D array to exactly n samples."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])


def check_policy(info: AudioInfo, sample_rate: int | None, *, channels: str = "downmix",
                 resample: bool = True) -> None:
    """Raise AudioFileError if the file breaks the channel or sample-rate policy."""
    if channels not in ("downmix", "error"):
        raise ValueError(f"channels must be 'downmix' or 'error', got {channels!r}")
    path = info.path
    if info.channels > 1 and channels == "error":
        raise AudioFileError(f"{path} has {info.channels} channels but mono audio is required", path=path,
                             fix="convert the file to mono, or --bind \"audio.channels='downmix'\"")
    if sample_rate is not None and info.sample_rate != sample_rate and not resample:
        raise AudioFileError(
            f"{path} has sample rate {info.sample_rate} Hz but {sample_rate} Hz is expected and resampling is off",
            path=path,
            fix=f"enable resampling (--bind \"audio.resample=True\") or resample the files to {sample_rate} Hz")
    if sample_rate is not None and frames_at_rate(info.frames, info.sample_rate, sample_rate) == 0:
        raise AudioFileError(f"{path} has {info.frames} samples at {info.sample_rate} Hz, less than one sample at "
                             f"{sample_rate} Hz", path=path, fix="remove the file from the inputs")


def _read_span(info: AudioInfo, start: int, count: int) -> np.ndarray:
    """Read source frames [start, start+count) as float32 (n, channels); may return fewer at the end."""
    path = info.path
    try:
        with sf.SoundFile(str(path)) as f:
            if start > 0:
                f.seek(start)
            data = f.read(count, dtype="float32", always_2d=True)
    except _SF_ERRORS as err:
        raise AudioFileError(f"{path} is truncated or corrupt (soundfile: {_reason(err)})", path=path,
                             fix="re-export or remove the file") from err
    except OSError as err:
        raise AudioFileError(f"cannot read {path}: {err}", path=path, fix="check the file permissions") from err
    return data


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    channels: str = "downmix",
    resample: bool = True,
    offset: int = 0,
    frames: int | None = None,
    info: AudioInfo | None = None,
    clipped: list[tuple[int, float]] | None = None,
) -> np.ndarray:
    """Load a file as float32 mono 1-D in [-1, 1] at ``sample_rate`` (None keeps the file rate).

    ``offset`` and ``frames`` count samples at the target rate. With ``frames`` given, only the
    needed span of the file is read and the result is exactly ``frames`` long (zero-padded at
    the end when the file ends first). ``info`` skips probing when the caller already has it. Samples of the file
    beyond +-CLIP_WARN_PEAK are clipped; ``clipped`` collects (count, peak) for :func:`clip_warning`.
    """
    if offset < 0 or (frames is not None and frames < 0):
        raise ValueError(f"offset and frames must be >= 0, got offset={offset}, frames={frames}")
    info = info if info is not None else probe(path)
    path = info.path
    check_policy(info, sample_rate, channels=channels, resample=resample)
    sr_in = info.sample_rate
    sr_out = sr_in if sample_rate is None else int(sample_rate)

    if sr_in == sr_out:
        count = info.frames - offset if frames is None else frames
        data = _read_span(info, offset, max(count, 0)) if offset < info.frames else np.zeros((0, info.channels), np.float32)
        skip, want = 0, frames
        src0 = offset
    elif frames is None and offset == 0:
        data, skip, want, src0 = _read_span(info, 0, info.frames), 0, None, 0
    else:
        # Map the target span to the source, widened by filter context and aligned so the
        # target position of the first source sample is an integer.
        ratio = sr_in / sr_out
        total = frames_at_rate(info.frames, sr_in, sr_out)
        want = frames if frames is not None else max(total - offset, 0)
        step = sr_in // math.gcd(sr_in, sr_out)
        src_start = max(int(math.floor(offset * ratio)) - _RESAMPLE_CONTEXT, 0)
        if step <= _MAX_ALIGN_STEP:
            src_start -= src_start % step
        src_end = int(math.ceil((offset + want) * ratio)) + _RESAMPLE_CONTEXT
        tgt_start = round(src_start / ratio)
        data = _read_span(info, src_start, src_end - src_start) if src_start < info.frames \
            else np.zeros((0, info.channels), np.float32)
        skip, src0 = offset - tgt_start, src_start

    bad = ~np.isfinite(data)
    if bad.any():
        first = src0 + int(np.argmax(bad.any(axis=1)))
        raise AudioFileError(f"{path} contains NaN or infinite samples (or values beyond float32): {int(bad.sum())} "
                             f"in frames {src0}..{src0 + len(data)}, the first at frame {first}", path=path,
                             fix="re-export the file (the float data is corrupt) or remove it from the inputs")
    if clipped is not None and data.size:
        peak = float(np.abs(data).max())
        if peak > CLIP_WARN_PEAK:
            clipped.append((int((np.abs(data) > 1.0).sum()), peak))
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if sr_in != sr_out:
        n_out = frames_at_rate(len(mono), sr_in, sr_out)
        mono = _fit_length(_resample_1d(mono, sr_in, sr_out), n_out)
    mono = mono[skip:]
    if want is not None:
        mono = _fit_length(mono, want)
    # Resampling can overshoot slightly; keep the documented range.
    return np.ascontiguousarray(np.clip(mono, -1.0, 1.0), dtype=np.float32)


# load_audio's keyword ``resample`` shadows the function inside it.
_resample_1d = resample


def save_audio(path: str | os.PathLike, x, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write audio atomically (temp file in the same folder, then rename), clipped to [-1, 1].

    ``x`` is (T,) or (T, channels). The format follows the extension (none means .wav); a
    subtype the format cannot hold (e.g. PCM_16 for .ogg) falls back to the format's default.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == "":
        path, ext = path.with_suffix(".wav"), ".wav"
    if ext not in _FORMATS:
        raise AudiogenError(f"cannot write {path}: unknown audio extension {ext!r}", path=path,
                            fix=f"use one of {', '.join(AUDIO_EXTENSIONS)}")
    fmt = _FORMATS[ext]
    if not sf.check_format(fmt, subtype):
        subtype = sf.default_subtype(fmt)
    data = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32)
    if data.ndim == 2 and data.shape[0] == 1 and data.shape[1] > 1:
        data = data[0]  # a (1, T) channel-first mono signal
    if not np.all(np.isfinite(data)):
        raise ValueError(f"refusing to write {path}: the signal contains NaN or infinite values")
    data = np.clip(data, -1.0, 1.0)

    buf = io.BytesIO()
    sf.write(buf, data, int(sample_rate), subtype=subtype, format=fmt)
    return atomic_write_bytes(path, buf.getvalue())


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS


def _scan_dir(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_audio(p) and p.is_file())


def _list_entries(list_file: Path) -> list[tuple[str, int]] | list[AudioInfo]:
    """(entry, line number) pairs of a .txt/.lst/.csv list file, or the AudioInfo rows of a manifest CSV."""
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AudioFileError(f"cannot read list file {list_file}: {err}", path=list_file,
                             fix="check the file (it must be UTF-8 text)") from err
    if list_file.suffix.lower() != ".csv":
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                entries.append((line, number))
        return entries

    reader = csv.reader(io.StringIO(text))
    nonblank = nonblank_rows(reader)
    try:
        first_row = next(nonblank, None)
        if first_row is None:
            return []
        header = [cell.strip().lower() for cell in first_row[0]]
        cols = manifest_columns(header)
        if cols is not None:  # a manifest: the header facts are in it, nothing is probed; rows are streamed
            return parse_rows(list_file, nonblank, cols)
        rows = [first_row, *nonblank]
    except csv.Error as err:
        raise AudioFileError(f"list file {list_file} is not valid CSV (line {reader.line_num}: {err})",
                             path=list_file, fix="check the quoting, or write a manifest with `audiogen index`") from None
    if "path" in header:
        column, rows = header.index("path"), rows[1:]
    else:
        # No "path" column: use the first one; the first row is a header unless it names audio.
        column = 0
        first = rows[0][0][0].strip()
        if not (_is_audio(Path(first)) or (list_file.parent / first).exists()):
            rows = rows[1:]
    return [(row[column].strip(), number) for row, number in rows
            if len(row) > column and row[column].strip() and not row[column].strip().startswith("#")]


def _expand(inputs: str | os.PathLike | Iterable[str | os.PathLike],
            missing: list[dict] | None = None) -> dict[Path, AudioInfo | None]:
    """Absolute audio paths in input order, each with its AudioInfo when a manifest supplied it. A list entry that
    does not exist is appended to ``missing`` (``{"source", "reason"}``) when it is given, else raised; a missing
    input given on the command line is always raised."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [Path(p) for p in inputs]
    found: dict[Path, AudioInfo | None] = {}

    def add(p: Path) -> None:
        found.setdefault(p.resolve(), None)

    def visit(p: Path, origin: tuple[Path, int] | None, active: tuple[Path, ...]) -> None:
        if not p.exists():
            where = f" (listed in {origin[0]}, line {origin[1]})" if origin else ""
            fix = ("check the list entry; relative entries are resolved against the list file's folder" if origin
                   else "check the path; inputs are audio files, folders or list files (.txt, .lst, .csv)")
            err = AudioFileError(f"input {p} does not exist{where}", path=p, fix=fix)
            if origin and missing is not None:
                missing.append({"source": str(p), "reason": str(err)})
                return
            raise err
        if p.is_dir():
            for f in _scan_dir(p):
                add(f)
        elif p.suffix.lower() in LIST_EXTENSIONS:
            key = p.resolve()
            if key in active:
                raise AudioFileError(f"list file {p} includes itself", path=p, fix="remove the cycle")
            for entry in _list_entries(p):
                if isinstance(entry, AudioInfo):  # a manifest row, trusted as written: no stat, no resolve
                    found.setdefault(entry.path, entry)
                    continue
                text, number = entry
                q = Path(text).expanduser()
                visit(q if q.is_absolute() else p.parent / q, (p, number), active + (key,))
        else:
            add(p)

    for p in inputs:
        visit(p, None, ())
    if not found and missing:  # every listed entry is missing: say which, not "no audio files"
        raise bad_files_error(missing, None)
    if not found:
        names = ", ".join(str(p) for p in inputs) or "(no inputs)"
        raise AudioFileError(f"no audio files found in {names}; supported extensions are "
                             f"{', '.join(AUDIO_EXTENSIONS)} (and list files {', '.join(LIST_EXTENSIONS)})",
                             fix="point the inputs at audio files, folders of audio files or list files")
    return found


def expand_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike],
                  missing: list[dict] | None = None) -> list[Path]:
    """Turn files, folders (recursive) and list files (.txt/.lst/.csv) into absolute audio paths.

    Order is kept (folders sorted), duplicates dropped. List entries are resolved against the
    list file's folder and may themselves be files or folders. Manifest rows (see
    :mod:`audiogen.audio.manifest`) are taken as written, without checking that the files exist. List entries
    that do not exist go to ``missing`` when it is given (see :func:`_expand`).
    """
    return list(_expand(inputs, missing))


def index_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike],
                 failed: list[dict] | None = None) -> list[AudioInfo]:
    """Like :func:`expand_inputs`, with each file's AudioInfo: from a manifest when one lists it, else probed.

    Unreadable files and missing list entries are appended to ``failed`` as ``{"source", "reason"}`` and skipped
    when a ``failed`` list is given; else every one of them is listed in one AudioFileError (all are probed first).
    """
    infos, problems = [], []
    for p, info in _expand(inputs, problems).items():
        if info is None:
            try:
                info = probe(p)
            except AudioFileError as exc:
                problems.append({"source": str(p), "reason": str(exc)})
                continue
        infos.append(info)
    if failed is None and problems:
        raise bad_files_error(problems, None)
    if failed is not None:
        failed.extend(problems)
    return infos


def bad_files_error(failed: list[dict],
                    skip_hint: str | None = "drop --strict to go on (each is recorded with its reason)") -> AudioFileError:
    """One error for every bad input (``{"source", "reason"}``): a single one as it is, several listed by their
    first lines."""
    if len(failed) == 1:
        return AudioFileError(failed[0]["reason"])
    lines = "\n  ".join(e["reason"].splitlines()[0] for e in failed)
    return AudioFileError(f"{len(failed)} input files cannot be used:\n  {lines}",
                          fix="repair or remove these inputs" + (f", or {skip_hint}" if skip_hint else ""))


def run_index(folder: Path, name: str, inputs: Sequence[str | os.PathLike], resuming: bool = True) -> list:
    """The file index of a run's ``name`` split: ``folder/index/name.csv``, written on the first start and reused
    when the run resumes with the same inputs, so resuming a run on a large folder does not rescan and reprobe it.
    A resumed run keeps the files of its first start (new files in the folder need a new run folder). A start with
    nothing to resume (``resuming`` False: an earlier start failed before its first checkpoint) indexes again, and
    so does a resume with other inputs, which says so."""
    from audiogen.artifacts import atomic_write_json

    folder = Path(folder)
    manifest, record = folder / "index" / f"{name}.csv", folder / "index" / f"{name}.json"
    key = [os.path.abspath(p) for p in inputs]
    if resuming and manifest.is_file() and record.is_file():
        try:
            same = json.loads(record.read_text()).get("inputs") == key
        except (OSError, ValueError, AttributeError):
            same = False
        if same:
            return read_manifest(manifest)
        log.warning("the %s inputs differ from those this run was started with: indexing the new ones into %s; "
                    "training continues from the checkpoint on them", name, manifest)
    infos = index_inputs(inputs)
    write_manifest(manifest, infos)
    atomic_write_json(record, {"inputs": key, "files": len(infos)})
    return infos


def drop_run_index(folder: Path) -> None:
    """Forget a run's file index (after a file in it failed: the next start indexes the inputs again)."""
    for p in (Path(folder) / "index").glob("*.json"):
        p.unlink(missing_ok=True)  # the record goes first: without it the manifest is never reused
