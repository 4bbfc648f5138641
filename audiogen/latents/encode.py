"""Encode a corpus into a latent dataset: streamed, sharded, resumable, atomic.

Work happens in ``OUT.partial/`` (locked against a second writer). Every shard is written to a temporary name
and renamed, then its sidecar ``shard-NNNNN.json`` (files, failures, statistics) marks it finished. A re-run of
the same command skips finished shards; shard boundaries are planned from the file headers (order and sizes)
before encoding, so a resumed encode produces the same bytes, and several processes can share the shards of one
plan (rank 0 plans, merges and renames). ``meta.json`` is written last and the folder renamed to ``OUT``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from audiogen import errors
from audiogen.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    release_lock,
    take_lock,
    versions,
)
from audiogen.audio.io import (
    AudioInfo,
    bad_files_error,
    check_policy,
    clip_warning,
    frames_at_rate,
    load_audio,
    probe,
)
from audiogen.contracts import Encoder, chunk_spans
from audiogen.distributed import Ranks, launch
from audiogen.errors import ArtifactError, AudioFileError, AudiogenError, WriteFailed
from audiogen.latents.dataset import FORMAT, VERSION, RunningStats
from audiogen.latents.prefetch import prefetch
from audiogen.latents.record import LatentRecord
from audiogen.latents.windows import Window, WindowBatcher, WindowShapes
from audiogen.pipeline import encoder_info
from audiogen.settings import AudioSettings, EncodeSettings


@dataclass
class EncodeJob:
    encoder: torch.nn.Module
    files: list[Path]
    out: Path
    audio: AudioSettings
    settings: EncodeSettings
    provenance: dict  # encoder/decoder component names, operative config, checkpoint path and hash
    strict: bool = False
    overwrite: bool = False
    progress: bool = True
    failed: list[dict] = field(default_factory=list)  # inputs already known bad (missing list entries)


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc: nothing to do
            _LIBC = False
    return _LIBC


_LIBC = None
# glibc's defaults give freed blocks over 128 kB back to the OS at once, and an encoder call frees and allocates
# activations of about a megabyte each: 1.6 million page faults, a third of the time of a 30-file encode, until
# some larger free happens to raise glibc's dynamic thresholds. Fixed thresholds keep up to this much freed
# memory for reuse (malloc_trim at each shard's end still gives it back).
_KEEP_FREED_BYTES = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def _keep_freed_memory() -> None:
    libc = _libc()
    if libc:
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)  # glibc's largest allowed value on 64-bit systems


def _release_freed_memory() -> None:
    """Give freed heap back to the OS at the end of a shard."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


def _fingerprint(job: EncodeJob) -> dict:
    h = hashlib.sha256()
    for f in job.files:
        h.update(str(f).encode() + b"\0")
    return {"files_sha256": h.hexdigest(), "num_files": len(job.files),
            "operative_config_sha256": hashlib.sha256(job.provenance.get("operative_config", "").encode()).hexdigest(),
            "checkpoint_sha256": (job.provenance.get("checkpoint") or {}).get("sha256"),
            # a pretrained model file (RAVE export) changed between runs would mix two models' latents
            "model_sha256": (encoder_info(job.encoder).get("encoder_info") or {}).get("model_sha256"),
            "audio": job.audio.as_dict(),
            # not devices/num_nodes/accelerator: a resume may run on another number of processes
            "settings": {k: getattr(job.settings, k) for k in ("shard_mb", "chunk_seconds", "dtype")}}


def encode_array(encoder: torch.nn.Module, read: Callable[[int, int], np.ndarray], num_samples: int,
                 chunk: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Latents (frames, C) of a signal of ``num_samples``, read in spans ``read(start, stop)``.

    Long signals are encoded in hop-aligned chunks with ``receptive_field`` samples of real context on both
    sides, so the result equals encoding the whole signal at once.
    """
    hop = encoder.hop
    rf = getattr(encoder, "receptive_field", None)
    frames = math.ceil(num_samples / hop)
    if rf is None or num_samples <= chunk:
        spans = [(0, num_samples, 0, num_samples)]
    else:
        spans = chunk_spans(num_samples, hop, chunk, rf)
    out = []
    with torch.inference_mode():
        for s, e, a, b in spans:
            x = torch.from_numpy(np.ascontiguousarray(read(s, e), dtype=np.float32))[None, None].to(device)
            z = encoder(x)[0]  # (C, frames of span)
            first = (a - s) // hop
            out.append(z[:, first: first + math.ceil((b - a) / hop)])
    z = out[0] if len(out) == 1 else torch.cat(out, dim=1)
    assert z.shape[1] == frames, (z.shape, frames)
    return z.T.float().cpu().numpy()


class _ShardBuffer:
    def __init__(self, staging: Path, index: int, dtype: str):
        self.staging, self.index, self.dtype = staging, index, np.dtype(dtype)
        self.arrays: list[np.ndarray] = []
        self.entries: list[dict] = []
        self.failed: list[dict] = []
        self.frames = 0

    @property
    def nbytes(self) -> int:
        return self.frames * (self.arrays[0].shape[1] if self.arrays else 0) * self.dtype.itemsize

    def add(self, source: str, info: AudioInfo, duration: float, samples: int, z: np.ndarray,
            warnings: list[str]) -> None:
        self.entries.append({"source": source, "duration": duration, "samples": samples, "length": len(z),
                             "shard": self.index, "offset": self.frames, "source_sample_rate": info.sample_rate,
                             **({"warnings": warnings} if warnings else {})})
        self.arrays.append(z.astype(self.dtype, copy=False))
        self.frames += len(z)

    def flush(self) -> dict:
        """Write the shard (if any file made it) and then its sidecar, which marks the shard finished."""
        side = {"name": None, "frames": 0, "files": [], "failed": self.failed, "stats": None}
        if self.entries:
            name = f"shard-{self.index:05d}.npy"
            data = np.concatenate(self.arrays)
            buf = io.BytesIO()
            np.save(buf, data)
            atomic_write_bytes(self.staging / "shards" / name, buf.getvalue())
            side.update(name=name, frames=int(len(data)), files=self.entries, stats=RunningStats.of(data).to_json())
        atomic_write_json(self.staging / "shards" / f"shard-{self.index:05d}.json", side)
        return side


def run_encode(job: EncodeJob, ranks: Ranks | None = None) -> dict | None:
    """Encode ``job.files`` into ``job.out``; returns the meta (None on ranks other than 0).

    With several processes (``encode.devices``/``encode.num_nodes``, torchrun or SLURM) rank 0 prepares the staging
    folder and the shard plan, every rank encodes its share of the unfinished shards, and rank 0 merges the
    sidecars into ``meta.json`` and renames. An error on any rank is raised on all of them."""
    if ranks is None:  # launched here, so closed here
        ranks = launch(job.settings.devices, job.settings.num_nodes, job.settings.accelerator, "encode")
        try:
            return run_encode(job, ranks)
        finally:
            ranks.close()
    if ranks.device.type != "cpu":
        job.encoder.to(ranks.device)
    staging = job.out.with_name(job.out.name + ".partial")
    created = _agree(ranks, lambda: _open_staging(job, staging))
    try:
        plan, todo, failed = _agree(ranks, _writing(staging, lambda: _plan(job, staging)))
        _agree(ranks, _writing(staging, lambda: _encode_shards(job, staging, plan, todo[ranks.rank::ranks.world],
                                                               ranks)), everyone=True)
        meta = _agree(ranks, _writing(staging, lambda: _finish(job, staging, plan, failed)), share=False)
    except BaseException as exc:
        if ranks.rank == 0:
            release_lock(staging / "lock")
            # A clean error (bad input under --strict, nothing encodable) leaves nothing behind; an interruption
            # or a failed write (a full disk) keeps the finished shards so that re-running resumes.
            if isinstance(exc, AudiogenError) and not isinstance(exc, WriteFailed) and created:
                shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta if ranks.rank == 0 else None


def _writing(staging: Path, fn: Callable) -> Callable:
    """``fn`` with a failed write (disk full, file too large, folder made read-only) as one clean message that
    reaches every rank. The finished shards stay (each was written atomically), so re-running resumes. Reading
    audio raises AudioFileError, so an OSError here is a write."""
    def run():
        try:
            return fn()
        except OSError as exc:
            done = len(list((staging / "shards").glob("shard-*.json")))
            raise WriteFailed(f"writing the latent dataset in {staging} failed ({exc.strerror or exc}); "
                              f"{done} finished shard(s) are kept there",
                              fix="free disk space (or fix the permissions) and re-run the same command: it "
                                  f"resumes from the finished shards (or delete {staging} to start over)") from None
    return run


def _agree(ranks: Ranks, fn: Callable, everyone: bool = False, share: bool = True):
    """Run ``fn`` on rank 0 (or on every rank) and give every rank rank 0's result (``share``; else rank 0 alone
    keeps it), or raise the first error on every rank alike, so that no rank waits for one that has failed.
    Any exception counts (an encoder that fails on a file raises RuntimeError); the other ranks raise it as an
    AudiogenError when it was one (a clean error), else as a RuntimeError naming the rank (finished shards are kept)."""
    if ranks.world == 1:
        return fn()
    result, error = None, None
    if everyone or ranks.rank == 0:
        try:
            result = fn()
        except Exception as exc:
            error = exc
    outcomes = ranks.all_gather((None if error is None else (type(error).__name__, str(error)),
                                 result if ranks.rank == 0 and share else None))
    if error is not None:
        raise error
    rank, failed = next(((r, e) for r, (e, _) in enumerate(outcomes) if e is not None), (None, None))
    if failed is not None:
        cls = getattr(errors, failed[0], None)
        if isinstance(cls, type) and issubclass(cls, AudiogenError):
            raise cls(failed[1])
        raise RuntimeError(f"rank {rank} of the encode failed: {failed[0]}: {failed[1]}")
    return outcomes[0][1] if share else result


def _open_staging(job: EncodeJob, staging: Path) -> bool:
    """Check the output, create and lock ``OUT.partial``; returns whether this run created it."""
    out = job.out
    if (out / "meta.json").exists() and not job.overwrite:
        raise ArtifactError(f"{out} already holds a latent dataset", fix="pass --overwrite, or choose another -o")
    if out.exists() and not (out / "meta.json").exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtifactError(f"output folder {out} exists and is not a latent dataset", fix="choose another -o")
    created = not staging.exists()
    try:
        (staging / "shards").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create output folder {staging} ({exc.strerror})",
                            fix="choose a writable location for -o") from None
    take_lock(staging, "encode")  # rank 0 holds it for all the ranks of this job
    return created


def _side(staging: Path, k: int) -> Path:
    return staging / "shards" / f"shard-{k:05d}.json"


def _plan(job: EncodeJob, staging: Path) -> tuple[list[list[tuple[str, AudioInfo]]], list[int], list[dict]]:
    """(shards: the files of each shard in input order, the shards not finished yet, header failures).

    Shard boundaries come from the headers alone (a file's latent length is ceil(samples / hop)), before anything
    is encoded: whatever the number of processes, and however often the encode was interrupted, shard k holds
    the same files and the same bytes."""
    fp = _fingerprint(job)
    job_file = staging / "job.json"
    if job_file.exists():
        old = json.loads(job_file.read_text())
        if old != fp:
            raise ArtifactError(f"{staging} holds an interrupted encode of different inputs or settings",
                                fix=f"re-run that command to finish it, or delete {staging}")
    else:
        atomic_write_json(job_file, fp)

    sr, hop = job.audio.sample_rate, job.encoder.hop
    failed: list[dict] = list(job.failed)
    plan: list[list[tuple[str, AudioInfo]]] = [[]]
    limit = int(job.settings.shard_mb * 2**20)
    row = job.encoder.latent_size * np.dtype(job.settings.dtype).itemsize
    size = 0
    for f in job.files:  # header pass: catches unreadable files early and sizes the shards
        try:
            info = probe(f)
            check_policy(info, sr, channels=job.audio.channels, resample=job.audio.resample)
        except AudioFileError as exc:
            failed.append({"source": str(f), "reason": str(exc)})
            continue
        if job.strict and info.warnings:  # a truncated copy: encoded with a warning, refused under --strict
            failed.append({"source": str(f), "reason": f"{f}: {info.warnings[0]}"})
            continue
        plan[-1].append((str(f), info))
        size += math.ceil(frames_at_rate(info.frames, info.sample_rate, sr) / hop) * row
        if size >= limit:
            plan.append([])
            size = 0
    if job.strict and failed:  # every input was probed: one error lists them all
        raise bad_files_error(failed)
    if not plan[-1]:
        plan.pop()
    todo = [k for k in range(len(plan)) if not _side(staging, k).exists()]
    return plan, todo, failed


READ_AHEAD = 8  # blocks of audio read ahead of the encoder (each at most one chunk: chunk_seconds of samples)


@dataclass
class _Piece:
    """The audio of one file, or of one block of a long file, read ahead of the encoder."""

    index: int  # of the file in its shard
    source: str
    info: AudioInfo
    samples: int  # of the whole file, at the job's rate
    clipped: list  # filled by every read of the file: complete once its last block is read
    windows: list[Window] | None = None  # the file's windows inside this block; None: the file is encoded whole
    count: int = 0  # windows of the whole file
    start: int = 0  # first sample of the block
    audio: np.ndarray | None = None
    last: bool = True  # the file's last block
    error: AudioFileError | None = None


@dataclass
class _ShardEnd:
    shard: int


def _window_shapes(job: EncodeJob, sr: int) -> WindowShapes | None:
    """The job's window sizes; None for an encoder without a finite receptive field (files are encoded whole)."""
    rf = getattr(job.encoder, "receptive_field", None)
    if rf is None:
        return None
    seconds = job.settings.batch_seconds or getattr(job.encoder, "batch_seconds", Encoder.batch_seconds)
    return WindowShapes(job.encoder.hop, rf, int(seconds * sr))


def _read_ahead(job: EncodeJob, plan: list, mine: list[int], shapes: WindowShapes | None, chunk: int):
    """The audio of every file of shards ``mine``, in order, then a _ShardEnd per shard. A file up to ``chunk``
    samples long is read whole, a longer one in blocks of windows spanning about ``chunk`` samples."""
    sr = job.audio.sample_rate
    for k in mine:
        for i, (f, info) in enumerate(plan[k]):
            samples = frames_at_rate(info.frames, info.sample_rate, sr)
            clipped: list[tuple[int, float]] = []
            read = _reader(f, info, job.audio, clipped)
            piece = _Piece(i, f, info, samples, clipped)
            windows = None if shapes is None else shapes.plan(math.ceil(samples / shapes.hop) * shapes.hop)
            try:
                if windows is None:
                    yield dataclasses.replace(piece, audio=read(0, samples))
                    continue
                n = windows[-1].start + windows[-1].size  # zero-padded to a multiple of hop, like the encoder pads
                blocks = [windows] if samples <= chunk else _blocks(windows, chunk)
                for b, group in enumerate(blocks):
                    start, stop = group[0].start, max(w.start + w.size for w in group)
                    if samples <= chunk:  # read exactly as a whole-file encode reads it
                        audio = np.zeros(n, np.float32)
                        audio[:samples] = read(0, samples)
                    else:
                        audio = read(start, stop)  # zero-padded past the end of the file
                    yield dataclasses.replace(piece, windows=group, count=len(windows), start=start, audio=audio,
                                              last=b == len(blocks) - 1)
            except AudioFileError as exc:
                yield dataclasses.replace(piece, error=exc)
        yield _ShardEnd(k)


def _reader(f: str | Path, info: AudioInfo, audio: AudioSettings,
            clipped: list | None = None) -> Callable[[int, int], np.ndarray]:
    """Samples [start, stop) of ``f`` at the job's rate and channels (clipped samples noted in ``clipped``)."""
    def read(start: int, stop: int) -> np.ndarray:
        return load_audio(f, audio.sample_rate, channels=audio.channels, resample=audio.resample, offset=start,
                          frames=stop - start, info=info, clipped=clipped)
    return read


def _blocks(windows: list[Window], chunk: int) -> list[list[Window]]:
    """Consecutive windows grouped so that each group spans at most ``chunk`` samples (or one window)."""
    groups: list[list[Window]] = []
    for w in windows:
        if groups and w.start + w.size - groups[-1][0].start <= chunk:
            groups[-1].append(w)
        else:
            groups.append([w])
    return groups


def _encode_shards(job: EncodeJob, staging: Path, plan: list, mine: list[int], ranks: Ranks) -> None:
    """Encode shards ``mine`` of the plan, each finished by its sidecar. A thread reads the audio ahead; windows
    of consecutive files of a shard share forward calls (see audiogen.latents.windows)."""
    sr = job.audio.sample_rate
    chunk = int(job.settings.chunk_seconds * sr)
    shapes = _window_shapes(job, sr)
    _keep_freed_memory()
    total = sum(info.duration for k in mine for _, info in plan[k])
    bar = tqdm(total=round(total, 1), unit="s", desc="encode", disable=not job.progress or ranks.rank != 0,
               leave=False)
    pieces = prefetch(_read_ahead(job, plan, mine, shapes, chunk), READ_AHEAD, name="audiogen-encode-read")
    try:
        for k in mine:
            _encode_shard(job, staging, k, plan[k], pieces, shapes, chunk, ranks.device, bar)
    finally:
        pieces.close()
        bar.close()


def _encode_shard(job: EncodeJob, staging: Path, k: int, files: list, pieces, shapes: WindowShapes | None,
                  chunk: int, device, bar) -> None:
    buf = _ShardBuffer(staging, k, job.settings.dtype)
    # Batches never span two shards: a shard's bytes are the same whichever process encodes it, after any resume.
    batcher = WindowBatcher(job.encoder, shapes, device) if shapes is not None else None
    whole: dict[int, np.ndarray] = {}
    outcome: dict[int, _Piece] = {}  # each file's last piece (without its audio): its error, or its clip record
    checked = 0

    def settle(upto: int) -> None:
        """Check and keep files ``checked..upto-1`` in order (all encoded by now)."""
        nonlocal checked
        for i in range(checked, upto):
            p = outcome[i]
            try:
                if p.error is not None:
                    raise p.error
                warnings = _warnings(job, p)  # raises under --strict
                z = whole.pop(i) if i in whole else batcher.take(i)
                if not np.isfinite(z).all():
                    raise AudioFileError("the encoder produced non-finite latents", path=p.source,
                                         fix="check the file for NaN/inf samples and the checkpoint for NaN weights")
            except AudioFileError as exc:
                if job.strict:
                    raise
                buf.failed.append({"source": p.source, "reason": str(exc)})
            else:
                buf.add(p.source, p.info, p.info.duration, p.samples, z, warnings)
        checked = upto

    for p in pieces:
        if isinstance(p, _ShardEnd):
            assert p.shard == k, (p.shard, k)
            break
        if p.error is not None or p.last and job.strict and _warnings(job, p, check=False):
            if batcher is not None:
                batcher.drop(p.index)
            outcome[p.index] = dataclasses.replace(p, audio=None)
            if job.strict:  # the first bad file in order is the one reported, as without batching
                if batcher is not None:
                    batcher.flush()
                settle(p.index + 1)
            bar.update(round(p.info.duration, 1))
            continue
        if p.windows is None:
            whole[p.index] = encode_array(job.encoder, lambda s, e, _a=p.audio: _a[s:e], p.samples, chunk,
                                          device=device)
        else:
            if p.start == 0:
                batcher.add_file(p.index, math.ceil(p.samples / shapes.hop), p.count)
            for w in p.windows:
                batcher.add(p.index, w, p.audio[w.start - p.start: w.start - p.start + w.size])
        if p.last:
            outcome[p.index] = dataclasses.replace(p, audio=None, windows=None)
            bar.update(round(p.info.duration, 1))
    if batcher is not None:
        batcher.flush()
    settle(len(files))
    buf.flush()
    _release_freed_memory()


def _warnings(job: EncodeJob, p: _Piece, check: bool = True) -> list[str]:
    """A file's warnings (a truncated copy, clipped samples); under --strict the first is an error."""
    warnings = [*p.info.warnings, *filter(None, [clip_warning(p.clipped)])]
    if check and job.strict and warnings:
        raise AudioFileError(f"{p.source}: {warnings[0]}", path=p.source,
                             fix="re-export the file within [-1, 1], or drop --strict to encode it "
                                 "clipped (the warning is recorded in meta.json)")
    return warnings


def _finish(job: EncodeJob, staging: Path, plan: list, failed: list[dict]) -> dict:
    """Merge the sidecars of every shard in plan order into ``meta.json``, unlock, rename to ``OUT``."""
    sides = [json.loads(_side(staging, k).read_text()) for k in range(len(plan))]
    kept = [s for s in sides if s["frames"]]
    # a file's "shard" is its shard's position in meta["shards"] (planned shards that only failed have none)
    files = [dict(e, shard=i) for i, s in enumerate(kept) for e in s["files"]]
    failed = failed + [e for s in sides for e in s["failed"]]
    if not files:
        reasons = "\n  ".join(e["reason"] for e in failed[:5])
        raise AudioFileError(f"no input file could be encoded:\n  {reasons}")
    stats = RunningStats.empty(job.encoder.latent_size)
    for s in kept:
        stats = stats.merge(RunningStats.from_json(s["stats"]))
    sr, hop = job.audio.sample_rate, job.encoder.hop
    meta = {
        "format": FORMAT, "version": VERSION, "created_by": versions(),
        **{k: v for k, v in job.provenance.items()},
        **encoder_info(job.encoder),
        "sample_rate": sr, "hop": hop, "latent_size": job.encoder.latent_size,
        "frame_rate": sr / hop, "dtype": job.settings.dtype, "layout": "shards of (frames, latent_size)",
        "audio": job.audio.as_dict(),
        "stats": stats.to_json(),
        "num_files": len(files), "total_frames": int(sum(e["length"] for e in files)),
        "total_seconds": float(sum(e["duration"] for e in files)),
        "shards": [{"name": s["name"], "frames": s["frames"]} for s in kept],
        "files": files, "failed": failed,
    }
    LatentRecord.from_meta(meta, job.out)  # what later stages read back: checked before it is written
    (staging / "job.json").unlink(missing_ok=True)
    atomic_write_json(staging / "meta.json", meta)
    out = job.out
    # renamed with the lock inside, released after: until OUT/meta.json exists, OUT.partial stays locked, so a
    # second encode can never take it over between the unlock and the rename
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)
    release_lock(out / "lock")
    return meta


def encode_files(encoder: torch.nn.Module, files: list[Path], audio: AudioSettings,
                 settings: EncodeSettings | None = None) -> list[np.ndarray]:
    """Latents (C, L) of each file, in memory: the command's chunked ``encode_array`` (long files in hop-aligned
    chunks with real context, equal to encoding them whole) for the tools that need a few encodings, not a dataset."""
    from audiogen.settings import encode_settings

    chunk = int((settings or encode_settings()).chunk_seconds * audio.sample_rate)
    out = []
    for f in files:
        info = probe(f)
        check_policy(info, audio.sample_rate, channels=audio.channels, resample=audio.resample)
        samples = frames_at_rate(info.frames, info.sample_rate, audio.sample_rate)
        out.append(encode_array(encoder, _reader(f, info, audio), samples, chunk).T)
    return out
