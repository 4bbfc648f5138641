#!/usr/bin/env python
"""Corpus-scale indexes: open and iterate a 200k-entry audio manifest and a 200k-file latent dataset.

1. **Manifest**: a CSV of N rows (``path,frames,sample_rate,channels,subtype``) whose files need not exist (a
   manifest is trusted; only its first row is checked, so one real file leads it). Timed: ``index_inputs`` (open),
   ``AudioDataset`` on the result (lengths, policy checks), one epoch of ``LengthGroupedBatchSampler`` with a
   length lookup per batch (and a check that every index comes exactly once). For scale: probing real files
   (what opening a folder or plain list costs) is timed on 200 files and extrapolated to N.
2. **Latent dataset**: the encode format written directly (no model): N files of 5..50 frames x 8 dims in float16,
   shards bounded at ``--shard-mb``. Timed: ``LatentDataset`` open (meta.json read and checked), one epoch of
   the batch sampler, and one epoch reading every item (its shard slice, finiteness check, tensor).

Each stage runs in a fresh child process; its peak RSS is that child's ``ru_maxrss`` (``os.wait4``). Everything
lives in a temporary folder (< 200 MB for N = 200k) deleted at the end.

    python scripts/benchmark_corpus.py [--n 200000] [--shard-mb 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM, BATCH = 8, 16


class Timer:
    """Wall and CPU seconds of a block: on a shared machine the CPU time is the stable figure."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def pair(self) -> list[float]:
        return [self.wall, self.cpu]


def _epoch(sampler, lengths) -> tuple[list[float], int]:
    """One pass of the sampler with a length lookup per batch; asserts no index is dropped or repeated."""
    seen = np.zeros(len(lengths), dtype=np.int32)
    frames = 0
    with Timer() as t:
        for batch in sampler:
            seen[batch] += 1
            frames += max(lengths[i] for i in batch)
    assert (seen == 1).all(), "an index was dropped or repeated"
    return t.pair(), frames


def stage_manifest(d: Path, n: int) -> dict:
    import soundfile as sf

    from audiogen.audio.dataset import AudioDataset, LengthGroupedBatchSampler
    from audiogen.audio.io import index_inputs, probe

    real = d / "audio" / "real.wav"
    real.parent.mkdir(parents=True, exist_ok=True)
    sf.write(real, np.zeros(1600), 16000)
    rng = np.random.default_rng(0)
    frames = rng.integers(16000, 16000 * 20, size=n)
    rows = ["path,frames,sample_rate,channels,subtype", "audio/real.wav,1600,16000,1,PCM_16"]
    rows += [f"audio/spk{i % 1000:04d}/utt{i:07d}.flac,{f},16000,1,PCM_16" for i, f in enumerate(frames[1:], 1)]
    manifest = d / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")

    with Timer() as t_open:
        infos = index_inputs(manifest)
    with Timer() as t_ds:
        ds = AudioDataset(infos, 16000, crop=16000 * 2, seed=0)
    sampler = LengthGroupedBatchSampler(ds.lengths, BATCH, shuffle=True, seed=0)
    t_epoch, _ = _epoch(sampler, ds.lengths)

    probe_dir = _mk(d / "probe")  # what a folder or plain list costs: one header read per file
    for i in range(200):
        sf.write(probe_dir / f"{i}.wav", np.zeros(160), 16000)
    t = time.perf_counter()
    for p in sorted(probe_dir.glob("*.wav")):
        probe(p)
    per_probe = (time.perf_counter() - t) / 200
    return {"entries": len(ds), "manifest_mb": manifest.stat().st_size / 1e6, "open_s": t_open.pair(),
            "dataset_s": t_ds.pair(),
            "epoch_index_s": t_epoch, "batches": len(sampler), "probe_each_ms": per_probe * 1e3,
            "probe_all_s_extrapolated": per_probe * n}


def _mk(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def write_latents(path: Path, n: int, shard_mb: float) -> dict:
    """N files of 5..50 frames in the encode layout (float16 shards bounded at shard_mb, meta.json last)."""
    from audiogen.artifacts import atomic_write_json
    from audiogen.latents.dataset import FORMAT, VERSION, RunningStats

    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 51, size=n)
    limit = int(shard_mb * 2**20)
    _mk(path / "shards")
    files, shards, stats = [], [], RunningStats.empty(DIM)
    start = 0
    while start < n:
        stop, size = start, 0
        while stop < n and size < limit:
            size += int(lengths[stop]) * DIM * 2
            stop += 1
        data = rng.normal(size=(int(lengths[start:stop].sum()), DIM)).astype(np.float16)
        name = f"shard-{len(shards):05d}.npy"
        np.save(path / "shards" / name, data)
        offsets = np.concatenate([[0], np.cumsum(lengths[start:stop])[:-1]])
        for i, off in zip(range(start, stop), offsets):
            files.append({"source": f"/corpus/spk{i % 1000:04d}/utt{i:07d}.flac", "duration": 1.0,
                          "samples": 16000, "length": int(lengths[i]), "shard": len(shards), "offset": int(off),
                          "source_sample_rate": 16000})
        shards.append({"name": name, "frames": int(len(data))})
        stats = stats.merge(RunningStats.of(data))
        start = stop
    meta = {"format": FORMAT, "version": VERSION, "sample_rate": 16000, "hop": 320, "latent_size": DIM,
            "dtype": "float16", "stats": stats.to_json(), "num_files": n, "shards": shards, "files": files,
            "failed": []}
    atomic_write_json(path / "meta.json", meta)
    return {"shards": len(shards), "largest_shard_mb": max(s["frames"] for s in shards) * DIM * 2 / 2**20}


def stage_latents_write(d: Path, n: int, shard_mb: float) -> dict:
    with Timer() as t:
        layout = write_latents(d / "latents", n, shard_mb)
    return {**layout, "write_s": t.pair()}


def stage_latents(d: Path, n: int) -> dict:
    from audiogen.audio.dataset import LengthGroupedBatchSampler
    from audiogen.latents.dataset import LatentDataset

    path = d / "latents"
    with Timer() as t_open:
        ds = LatentDataset(path, normalize=True)
        lengths = ds.lengths
    sampler = LengthGroupedBatchSampler(lengths, BATCH, shuffle=True, seed=0)
    t_epoch, _ = _epoch(sampler, lengths)
    total = 0
    with Timer() as t_read:
        for batch in sampler:
            for i in batch:
                total += ds[i]["length"]
    assert total == sum(lengths)
    return {"entries": len(ds), "meta_mb": (path / "meta.json").stat().st_size / 1e6,
            "disk_mb": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6,
            "open_s": t_open.pair(), "epoch_index_s": t_epoch, "epoch_read_s": t_read.pair(), "frames": int(total)}


def _child(stage: str, d: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--dir", str(d), "--n", str(args.n),
           "--shard-mb", str(args.shard_mb)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"stage {stage} failed (status {status})")
    return {**json.loads(out), "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--shard-mb", type=float, default=2.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="20,000 entries (benchmark_all's headline mode).")
    ap.add_argument("--stage", choices=["manifest", "latents-write", "latents"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick and not args.stage:
        args.n = 20_000
    if args.stage:
        fn = {"manifest": stage_manifest, "latents": stage_latents,
              "latents-write": lambda d, n: stage_latents_write(d, n, args.shard_mb)}[args.stage]
        print(json.dumps(fn(args.dir, args.n)))
        return

    d = Path(tempfile.mkdtemp(prefix="audiogen-corpus-"))
    try:
        m = _child("manifest", d, args)
        written = _child("latents-write", d, args)
        lat = {**written, **_child("latents", d, args)}
    finally:
        shutil.rmtree(d, ignore_errors=True)
    def ws(p):  # wall (cpu) seconds
        return f"{p[0]:.2f} s ({p[1]:.2f} s cpu)"

    print(f"\n{args.n} entries, batch {BATCH}, one thread; wall seconds (CPU seconds: stable on a busy machine)\n")
    print("| index | open | one epoch of indices | one epoch reading items | peak RSS |")
    print("|---|---|---|---|---|")
    print(f"| audio manifest ({m['manifest_mb']:.1f} MB CSV) | {ws(m['open_s'])} + AudioDataset "
          f"{ws(m['dataset_s'])} | {ws(m['epoch_index_s'])}, {m['batches']} batches | - | "
          f"{m['peak_rss_mb']:.0f} MB |")
    print(f"| latent dataset ({lat['meta_mb']:.1f} MB meta.json, {lat['shards']} shards <= "
          f"{lat['largest_shard_mb']:.1f} MB, {lat['disk_mb']:.0f} MB on disk) | {ws(lat['open_s'])} | "
          f"{ws(lat['epoch_index_s'])} | {ws(lat['epoch_read_s'])}, {lat['frames']} frames | "
          f"{lat['peak_rss_mb']:.0f} MB |")
    print(f"\nprobing instead of a manifest: {m['probe_each_ms']:.2f} ms per file -> "
          f"~{m['probe_all_s_extrapolated']:.0f} s for {args.n} files (every start, before this change)")
    print(f"writing the latent dataset (not timed as open): {ws(written['write_s'])}, peak RSS "
          f"{written['peak_rss_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "manifest": m, "latents": lat}, indent=1))
    print("HEADLINE " + json.dumps({"figure": "open an audio manifest + AudioDataset", "unit": "s",
                                    "value": round(m["open_s"][0] + m["dataset_s"][0], 2),
                                    "conditions": f"{args.n} entries, one thread; latent dataset open "
                                                  f"{lat['open_s'][0]:.2f} s, epoch of reads {lat['epoch_read_s'][0]:.1f} s"}))


if __name__ == "__main__":
    main()
