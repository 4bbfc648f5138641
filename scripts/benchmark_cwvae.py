#!/usr/bin/env python
"""CW-VAE L=2 on librispeech-100-mini: training throughput, peak memory, FLOPs, and test bits per frame.

One run does, at the configuration comparable to the paper code's benchmark (strides [64, 8], hidden 96,
latent [64, 32], DMoL 10, 16-bit mu-law, 2-second crops, batch 4, 2 threads):
1. the machine's measured fp32 matmul rate and the model's FLOPs per training step (torch's FLOP counter);
2. ``audiogen train`` through the CLI for ``--minutes`` of wall clock (steps, audio seconds per second, peak RSS);
3. ``audiogen evaluate`` on the test split: bits per frame (negative ELBO), beside FLAC -8 of the same files.

    python scripts/benchmark_cwvae.py --minutes 20 --out bench-cwvae
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"s_per_step": 8.2, "audio_s_per_s": 0.95, "peak_rss_gb": 4.3, "test_bpf_15min": 16.42}
COMPARABLE = ["DZ=[64, 32]", "HIDDEN=96", "train.batch_size=4", "train.crop_seconds=2.0", "train.lr=1e-3"]


def shared_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("AUDIOGEN_SHARED", ROOT.parent / "shared")).resolve()


def matmul_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - t0) / 1e9


def flops_per_step(binds: list[str], threads: int) -> tuple[float, float, int]:
    """(training FLOPs per step, seconds per in-process step, parameters) on random audio of the benchmark shape."""
    # the same in-process step as the coder benchmark (scripts/ is on sys.path when a script runs)
    import torch
    from benchmark_tasnet import measure

    torch.set_num_threads(threads)
    r = measure("pipelines/cwvae_l2_speech.gin", binds, 3)
    return r["train_gflop_per_step"] * 1e9, r["s_per_step"], r["parameters"]


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """Run a child; (wall seconds, its peak RSS in GB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 2**20  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shared", help="folder holding data/ (default: AUDIOGEN_SHARED or ../shared)")
    ap.add_argument("--out", type=Path, default=Path("bench-cwvae"))
    ap.add_argument("--bind", action="append", default=[], help="extra gin bindings for training")
    ap.add_argument("--skip-train", action="store_true", help="reuse OUT/run and only evaluate")
    args = ap.parse_args()

    data = shared_dir(args.shared) / "data" / "librispeech-100-mini"
    if not data.is_dir():
        sys.exit(f"librispeech-100-mini not found under {data}; pass --shared or set AUDIOGEN_SHARED")
    exe = str(Path(sys.executable).with_name("audiogen"))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    binds = COMPARABLE + [f"train.threads={args.threads}", f"train.max_minutes={args.minutes}",
                          "train.max_steps=1000000", "train.val_every=200", "train.log_every=10"] + args.bind
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    rate = matmul_gflops(args.threads)
    flops, s_step_inproc, params = flops_per_step(COMPARABLE + args.bind, args.threads)
    result = {"threads": args.threads, "matmul_gflops": rate, "train_gflop_per_step": flops / 1e9,
              "parameters": params, "inprocess_s_per_step": s_step_inproc,
              "inprocess_audio_s_per_s": 8.0 / s_step_inproc, "bindings": binds}
    result["fraction_of_matmul_rate"] = flops / 1e9 / s_step_inproc / rate

    run_dir = out / "run"
    if not args.skip_train:
        cmd = [exe, "train", "--gin", "pipelines/cwvae_l2_speech.gin", "--data", str(data / "train.txt"),
               "-o", str(run_dir), "--no-progress"]
        for b in binds:
            cmd += ["--bind", b]
        wall, peak = run(cmd, env)
        rows = [r for f in sorted((run_dir / "logs").glob("version_*/metrics.csv")) for r in csv.DictReader(open(f))]
        steps = max(int(r["step"]) for r in rows) + 1
        result.update({"train_wall_s": wall, "steps": steps, "s_per_step": wall / steps,
                       "audio_s_per_s": steps * 8.0 / wall, "peak_rss_gb": peak})
        last = [r for r in rows if r.get("train/elbo")][-20:]
        result["final_train_elbo_bpf"] = sum(float(r["train/elbo"]) for r in last) / len(last)
    ev = out / "eval"
    t0 = time.perf_counter()
    subprocess.run([exe, "evaluate", str(run_dir), "--data", str(data / "test.txt"), "-o", str(ev),
                    "--no-progress"], check=True, env=env)
    res = json.loads((ev / "evaluation.json").read_text())
    result.update({"eval_wall_s": time.perf_counter() - t0, "test_bits_per_frame": res["bits_per_frame"],
                   "test_reconstruction_bpf": res["reconstruction_bits_per_frame"],
                   "test_kl_bpf": res["kl_bits_per_frame"], "active_units": res["active_units"],
                   "flac_bits_per_sample": res["flac_bits_per_sample"], "flac_source": res["flac_source"]})
    (out / "result.json").write_text(json.dumps(result, indent=1))

    ref = REFERENCE
    rows = [
        ("training throughput (audio s / s)", f"{result.get('audio_s_per_s', float('nan')):.2f}",
         f"{ref['audio_s_per_s']:.2f}", ">= 2x reference"),
        ("seconds per step (batch 4 x 2 s)", f"{result.get('s_per_step', float('nan')):.2f}",
         f"{ref['s_per_step']:.1f}", ""),
        ("peak RSS (GB)", f"{result.get('peak_rss_gb', float('nan')):.2f}", f"{ref['peak_rss_gb']:.1f}",
         "<= half of reference"),
        (f"test bits per frame after {args.minutes:g} min", f"{result['test_bits_per_frame']:.3f}",
         f"{ref['test_bpf_15min']:.2f} (15 min)", "<= 15.0 (stretch 14.0)"),
        ("FLAC -8 bits per sample (test)", f"{result['flac_bits_per_sample']:.3f}"
         if result["flac_bits_per_sample"] else "n/a", "8.477", ""),
        ("training GFLOP per step", f"{result['train_gflop_per_step']:.1f}", "", ""),
        ("measured matmul rate (GFLOP/s)", f"{rate:.1f}", "", ""),
        ("achieved / matmul rate", f"{result['fraction_of_matmul_rate']:.1%}", "", ""),
    ]
    print("| figure | audiogen | paper code (REFERENCE.md) | target |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nsteps {result.get('steps')}, parameters {params}, active units {res['active_units']}")
    print(f"wrote {out / 'result.json'}")
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "CW-VAE L=2 training throughput", "value": round(result.get("audio_s_per_s", float("nan")), 3),
        "unit": "audio s/s", "conditions": f"{args.threads} thread(s), {args.minutes:g} min through the CLI; "
                                           f"test {result['test_bits_per_frame']:.3f} bits/frame"}))


if __name__ == "__main__":
    main()
