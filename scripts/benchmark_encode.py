#!/usr/bin/env python
"""``audiogen encode`` against its compute floor, for the quickstart encoder and the RAVE bridge, in one run.

On the same librispeech-100-mini files, each round measures for each encoder, one after the other:

- **floor**: the bare forward on fixed-size batches of the same audio, decoded and resampled beforehand and held
  in memory (cut into windows without margins: every sample goes through once), under ``torch.inference_mode``.
  Quickstart: the Conv1d encoder module of ``pipelines/conv_ae.gin``; RAVE: the TorchScript export's own
  ``encode`` method called directly (``torch.jit.load``). Three shapes are tried, the window size and batch that
  ``audiogen encode`` uses for most of its audio and those of half and twice its samples per call, and the fastest
  counts, so an encode cannot look good by choosing a slow shape for both;
- **encode**: ``audiogen encode`` on the same files, a fresh process each round (``python benchmark_encode.py
  --child ...`` runs the real command in-process), timed from start to end of ``run_encode`` (planning, reading
  and resampling, encoding, shard and meta writing) with the encoder already built; the child's own peak RSS.

Rounds alternate, and the encode/floor ratio is taken per round (floor and encode measured back to back) and
reported as the median over rounds. The same ratio per CPU second (the encode's CPU time counts all its threads,
its reader's decoding included) is printed beside it: on a machine shared with other jobs, wall-clock figures
swing with their load, and this one shows the work the encode adds to the forward. Targets: quickstart >= 80 % of its floor, RAVE bridge >= 90 % of its floor,
peak RSS < 1 GB. A missed target prints ``missed`` and exits 1 (``benchmark_all.py`` shows "target missed").
Without ``--run`` a throwaway quickstart checkpoint is trained for 2 steps (throughput does not depend on the
weights). Threads (``--threads``, default 1) apply to the floor and to the encode child alike; the encode's reader
thread decodes the next files on another core while the encoder runs, as it does for a user.

    python scripts/benchmark_encode.py [--quick] [--limit N] [--rounds R] [--threads T] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "data/librispeech-100-mini"
RAVE_MODEL = "models/rave-v2small-librispeech16k.ts"
TARGETS = {"quickstart": 0.80, "rave": 0.90}
TARGET_RSS_BYTES = 1_000_000_000  # 1 GB
SR = 16000


def shared_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser().resolve()
    env = os.environ.get("AUDIOGEN_SHARED")
    return Path(env).expanduser().resolve() if env else (ROOT.parent / "shared").resolve()


def corpus_files(corpus: Path, limit: int | None) -> list[Path]:
    """Every file of train/valid/test lists (in that order, deduplicated), else every audio file of the folder."""
    files: dict[Path, None] = {}
    for name in ("train.txt", "valid.txt", "test.txt"):
        lst = corpus / name
        if lst.exists():
            for line in lst.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    files.setdefault((corpus / line).resolve(), None)
    if not files:
        for p in sorted(corpus.rglob("*.flac")):
            files.setdefault(p.resolve(), None)
    out = list(files)
    if not out:
        sys.exit(f"benchmark_encode: no audio files in {corpus}")
    return out[:limit] if limit else out


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# ------------------------------------------------------------------------------------------------ encode child
def child(argv: list[str]) -> None:
    """Run ``audiogen encode ARGV`` in this process; print the seconds spent in run_encode and this process's
    peak RSS as JSON on the last line."""
    import audiogen.latents.encode as enc
    from audiogen.cli import cli

    real, spent = enc.run_encode, {}

    def cpu() -> float:  # every thread of this process (the reader thread included)
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    def timed(job, *a, **k):  # the real run_encode, timed: what follows the encoder's construction
        t0, c0 = time.perf_counter(), cpu()
        try:
            return real(job, *a, **k)
        finally:
            spent.update(seconds=time.perf_counter() - t0, cpu=cpu() - c0, files=len(job.files))

    enc.run_encode = timed
    t0 = time.perf_counter()
    cli.main(args=["encode", *argv, "--no-progress"], standalone_mode=False)
    import torch

    print("CHILD " + json.dumps({"run_encode_seconds": spent["seconds"], "run_encode_cpu_seconds": spent["cpu"],
                                 "command_seconds": time.perf_counter() - t0,
                                 "files": spent["files"], "torch_threads": torch.get_num_threads(),
                                 "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def run_encode_child(args: list[str], env: dict, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args, "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    line = next((x for x in reversed(res.stdout.splitlines()) if x.startswith("CHILD ")), None)
    if res.returncode != 0 or line is None:
        sys.exit(f"benchmark_encode: encode failed ({res.returncode}): {' '.join(cmd)}\n{res.stdout[-2000:]}\n"
                 f"{res.stderr[-4000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(line[len("CHILD "):])


# ------------------------------------------------------------------------------------------------------ floor
def floor(forward, audio, shapes: list[tuple[int, int]], budget: float) -> dict:
    """Audio s/s of ``forward`` on (batch, 1, size) windows cut from ``audio`` without overlap, for each shape,
    each for about ``budget`` seconds (one untimed call first); the fastest is the floor. Also per CPU second."""
    import torch

    rates, cpu_rates = {}, {}
    with torch.inference_mode():
        for size, batch in shapes:
            n = size * batch
            calls = len(audio) // n
            if calls < 2:
                sys.exit(f"benchmark_encode: too little audio for batches of {batch} x {size} samples")
            forward(audio[:n].view(batch, 1, size))
            done, t0, c0 = 0, time.perf_counter(), time.process_time()
            while True:
                i = 1 + done % (calls - 1)
                forward(audio[i * n: (i + 1) * n].view(batch, 1, size))
                done += 1
                wall = time.perf_counter() - t0
                if wall >= budget or done >= calls - 1:
                    break
            rates[f"{batch}x{size}"] = done * n / SR / wall
            cpu_rates[f"{batch}x{size}"] = done * n / SR / (time.process_time() - c0)
    best = max(rates, key=rates.get)
    return {"audio_s_per_s": rates[best], "shape": best, "shapes": rates, "audio_s_per_cpu_s": cpu_rates[best],
            "cpu_shapes": cpu_rates}


def call_shapes(encoder, seconds: float) -> list[tuple[int, int]]:
    """(size, batch) of the largest window ``audiogen encode`` uses, at ``seconds`` of audio per call."""
    from audiogen.latents.windows import WindowShapes

    w = WindowShapes(encoder.hop, encoder.receptive_field, int(seconds * SR))
    return [(w.sizes[0], w.batch[w.sizes[0]])]


# ------------------------------------------------------------------------------------------------------- main
def make_checkpoint(files: list[Path], tmp: Path, env: dict) -> Path:
    import soundfile as sf

    shortest = sorted(files, key=lambda f: sf.info(str(f)).frames)[:2]
    run = tmp / "run"
    cmd = [sys.executable, "-m", "audiogen.cli", "train", "--gin", "pipelines/conv_ae.gin", "--bind",
           "train.max_steps=2", *map(str, shortest), "-o", str(run), "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode != 0:
        sys.exit(f"benchmark_encode: training the throwaway checkpoint failed:\n{res.stderr[-4000:]}")
    return run / "model.ckpt"


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="120 files, 1 round, 2 s per floor shape")
    ap.add_argument("--shared", help="shared folder (default: $AUDIOGEN_SHARED, else ../shared beside the project)")
    ap.add_argument("--limit", type=int, help="only the first N files (default: all)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--floor-seconds", type=float, default=6.0, help="seconds per floor shape and round")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the floor and of the encode child")
    ap.add_argument("--only", choices=sorted(TARGETS), help="one encoder only")
    ap.add_argument("--batch-seconds", type=float, help="encode.batch_seconds (default: each encoder's own)")
    ap.add_argument("--run", type=Path, help="quickstart run folder or .ckpt (default: train 2 steps)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    args = ap.parse_args(argv)
    if args.quick:
        args.limit, args.rounds, args.floor_seconds = args.limit or 120, 1, 2.0

    os.environ.update({k: v for k, v in thread_env(args.threads).items() if k.endswith("_THREADS")})
    import numpy as np
    import torch

    from audiogen.audio.io import load_audio
    from audiogen.contracts import Encoder
    from audiogen.pipeline import load_pipeline

    torch.set_num_threads(args.threads)
    shared = shared_dir(args.shared)
    corpus = shared / CORPUS
    if not corpus.is_dir():
        sys.exit(f"benchmark_encode: {corpus} not found (set --shared or AUDIOGEN_SHARED)")
    rave_path = shared / RAVE_MODEL
    files = corpus_files(corpus, args.limit)
    env = thread_env(args.threads)
    load = {"start": os.getloadavg()}
    tmp = Path(tempfile.mkdtemp(prefix="audiogen-bench-encode-"))
    try:
        lst = tmp / "files.txt"
        lst.write_text("".join(f"{f}\n" for f in files))
        audio = torch.from_numpy(np.concatenate([load_audio(f, SR) for f in files]))
        seconds = len(audio) / SR
        encoders = {}
        if args.only in (None, "quickstart"):
            ckpt = args.run.resolve() if args.run else make_checkpoint(files, tmp, env)
            enc = load_pipeline(ckpt)[0].encoder.eval()
            encoders["quickstart"] = {"label": "quickstart Conv1d encoder (pipelines/conv_ae.gin)", "encoder": enc,
                                      "forward": enc, "cli": ["--run", str(ckpt)]}
        if args.only in (None, "rave"):
            if not rave_path.is_file():
                sys.exit(f"benchmark_encode: {rave_path} not found")
            bind = ["--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{rave_path}'"]
            enc = load_pipeline(None, ["pipelines/rave_bridge.gin"], [f"RAVE_MODEL='{rave_path}'"])[0].encoder
            encoders["rave"] = {"label": f"RAVE bridge ({rave_path.name}, encoding mode {enc.encoding_mode})",
                                "encoder": enc, "forward": torch.jit.load(str(rave_path)).eval().encode, "cli": bind}
        for e in encoders.values():
            secs = args.batch_seconds or getattr(e["encoder"], "batch_seconds", Encoder.batch_seconds)
            if args.batch_seconds:
                e["cli"] += ["--bind", f"encode.batch_seconds={args.batch_seconds}"]
            e["shapes"] = [s for k in (0.5, 1.0, 2.0) for s in call_shapes(e["encoder"], k * secs)]
            e["rounds"] = []
        for r in range(args.rounds):
            for name, e in encoders.items():
                before = os.getloadavg()[0]
                fl = floor(e["forward"], audio, e["shapes"], args.floor_seconds)
                ch = run_encode_child([*e["cli"], str(lst)], env, tmp / "latents")
                if ch["files"] != len(files):
                    sys.exit(f"benchmark_encode: the encode saw {ch['files']} files, expected {len(files)}")
                rate, cpu_rate = seconds / ch["run_encode_seconds"], seconds / ch["run_encode_cpu_seconds"]
                e["rounds"].append({"floor": fl, "encode": {**ch, "audio_s_per_s": rate, "audio_s_per_cpu_s": cpu_rate},
                                    "ratio": rate / fl["audio_s_per_s"],
                                    "cpu_ratio": cpu_rate / fl["audio_s_per_cpu_s"],
                                    "loadavg_1min": [before, os.getloadavg()[0]]})
                print(f"round {r + 1} {name}: floor {fl['audio_s_per_s']:.1f} audio s/s ({fl['shape']}), encode "
                      f"{rate:.1f} audio s/s: {rate / fl['audio_s_per_s']:.1%}; load {before:.2f}", file=sys.stderr)
        load["end"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results, met = {}, True
    for name, e in encoders.items():
        rounds = e["rounds"]
        ratio = statistics.median(x["ratio"] for x in rounds)
        rss = max(x["encode"]["peak_rss_bytes"] for x in rounds)
        ok = ratio >= TARGETS[name] and rss < TARGET_RSS_BYTES
        met &= ok
        results[name] = {"label": e["label"], "ratio_median": ratio, "ratios": [x["ratio"] for x in rounds],
                         "floor_audio_s_per_s": statistics.median(x["floor"]["audio_s_per_s"] for x in rounds),
                         "encode_audio_s_per_s": statistics.median(x["encode"]["audio_s_per_s"] for x in rounds),
                         "cpu_ratio_median": statistics.median(x["cpu_ratio"] for x in rounds),
                         "peak_rss_bytes": rss, "target_ratio": TARGETS[name], "met": ok, "rounds": rounds}
    res = {"corpus": str(corpus), "num_files": len(files), "audio_seconds": seconds, "rounds": args.rounds,
           "threads": args.threads, "child_torch_threads": [x["encode"]["torch_threads"] for e in encoders.values()
                                                           for x in e["rounds"]],
           "cpu_count": os.cpu_count(), "loadavg": load, "torch": torch.__version__,
           "python": platform.python_version(), "results": results}

    print(f"\n{len(files)} files, {seconds:.1f} s ({seconds / 60:.1f} min) of audio from {corpus}; {args.rounds} "
          f"round(s); torch {torch.__version__}, {args.threads} torch thread(s) (floor and encode), "
          f"{os.cpu_count()} CPUs; load average (1, 5, 15 min) {tuple(round(x, 2) for x in load['start'])} at the "
          f"start, {tuple(round(x, 2) for x in load['end'])} at the end\n")
    print("| encoder | floor: bare batched forward, audio in memory | `audiogen encode`, end to end | encode / floor "
          "(median, per round) | target | per CPU second: encode / floor | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for x in results.values():
        shape = x["rounds"][-1]["floor"]["shape"]
        print(f"| {x['label']} | {x['floor_audio_s_per_s']:,.1f} audio s/s (batch x window {shape}) | "
              f"{x['encode_audio_s_per_s']:,.1f} audio s/s | {x['ratio_median']:.1%} "
              f"({', '.join(f'{r:.1%}' for r in x['ratios'])}) | >= {x['target_ratio']:.0%}, RSS < 1 GB: "
              f"{'met' if x['met'] else 'missed'} | {x['cpu_ratio_median']:.1%} | {mb(x['peak_rss_bytes'])} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "audiogen encode / bare batched forward (" + ", ".join(results) + ")",
        "value": " / ".join(f"{x['ratio_median']:.1%}" for x in results.values()), "unit": "of the floor",
        "conditions": f"{len(files)} files, {args.rounds} round(s), {args.threads} thread(s), load "
                      f"{load['start'][0]:.1f}-{load['end'][0]:.1f}, peak RSS "
                      + " / ".join(mb(x["peak_rss_bytes"]) for x in results.values()),
        "target": " / ".join(f">= {TARGETS[n]:.0%}" for n in results) + ", peak RSS < 1 GB", "met": bool(met)}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
