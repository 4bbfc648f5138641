#!/usr/bin/env python
"""The likelihood table: LSTM, VRNN, SRNN, CW-VAE L=1 and L=2 (conv and frame coders) on librispeech-100-mini, same wall-clock budget.

Every model: stride (stack) 64, 16-bit mu-law, DMoL with 10 components, its shipped config (paper sizes), the
batch of its config (4 x 2-second crops; the frame-coder CW-VAE 16 x 0.5 s: the same samples per step), Adam at
``--lr`` (one rate for all: 3e-4 is the paper's for 100k+ steps; short budgets need more).
Each is trained through ``audiogen train`` for ``--minutes`` of wall clock on the train split and scored by
``audiogen evaluate`` on the test split (whole files; bits per frame = total -log2 p, or its bound, over total
samples), beside FLAC -8 of the same files. ``--parallel 2`` runs two trainings at once, each on its own threads.

    python scripts/benchmark_likelihood.py --minutes 20 --out bench-likelihood
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # name: (config, paper figure on TIMIT at s = 64)
    "LSTM": ("pipelines/lstm_speech.gin", "13.34"),
    "VRNN": ("pipelines/vrnn_speech.gin", "<= 12.54"),
    "SRNN": ("pipelines/srnn_speech.gin", "<= 12.42"),
    "CW-VAE L=1": ("pipelines/cwvae_l1_speech.gin", "<= 12.44"),
    "CW-VAE L=2": ("pipelines/cwvae_l2_speech.gin", "<= 12.17"),
    "CW-VAE L=2 frames": ("pipelines/cwvae_l2_frames_speech.gin", "-"),
}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "audiogen", *map(str, args)]


def start(name: str, args, data: Path, out: Path) -> dict:
    cfg, _ = MODELS[name]
    run = out / name.replace(" ", "_").replace("=", "")
    binds = [f"train.max_minutes={args.minutes}", "train.max_steps=100000000", f"train.threads={args.threads}",
             f"train.lr={args.lr}", "train.val_every=500", *args.bind]
    cmd = cli("train", "--gin", cfg, *[a for b in binds for a in ("--bind", b)],
              data / "train.txt", "-o", run, "--no-progress")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    log = open(out / f"{run.name}.train.log", "w")
    return {"name": name, "run": run, "t0": time.time(), "log": log,
            "proc": subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)}


def finish(job: dict, args, data: Path) -> dict:
    _, status, usage = os.wait4(job["proc"].pid, 0)
    wall = time.time() - job["t0"]
    job["log"].close()
    if status != 0:
        raise SystemExit(f"{job['name']} training failed; see {job['log'].name}")
    import torch

    ck = torch.load(job["run"] / "model.ckpt", map_location="cpu", weights_only=True)
    steps = int(ck["audiogen"]["global_step"])
    params = sum(v.numel() for k, v in ck["state_dict"].items() if v.is_floating_point())
    ev = job["run"] / "eval"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(cli("evaluate", "--run", job["run"], data / "test.txt", "-o", ev, "--overwrite", "--no-progress",
                       "--bind", f"train.threads={args.threads}"), check=True, env=env,
                   stdout=subprocess.DEVNULL)
    res = json.loads((ev / "evaluation.json").read_text())
    stored = ck["audiogen"]["operative_config"]  # the run's batch and crop, from the checkpoint already read
    batch, crop = (float(re.search(rf"^train\.{k} = (\S+)$", stored, re.M).group(1))
                   for k in ("batch_size", "crop_seconds"))
    audio_seconds = steps * batch * crop
    return {"model": job["name"], "parameters": params, "steps": steps, "train_wall_s": wall,
            "batch": int(batch), "crop_seconds": crop,
            "audio_s_per_s": audio_seconds / wall, "peak_rss_gb": usage.ru_maxrss / 1e6,
            "test_bpf": res["bits_per_frame"], "bound": res["bound"], "rec_bpf": res["reconstruction_bits_per_frame"],
            "kl_bpf": res["kl_bits_per_frame"], "active_units": res["active_units"],
            "flac": res["flac_bits_per_sample"], "files": res["files"], "seconds": res["seconds"]}


def table(rows: list[dict], args) -> str:
    lines = ["| model | parameters | batch | steps | audio s/s | peak RSS | test bits/frame | paper (TIMIT, s=64) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sign = "" if r["bound"].startswith("exact") else "<= "
        kl = ", ".join(f"KL {k} {v:.2f}" for k, v in r["kl_bpf"].items())
        lines.append(f"| {r['model']} | {r['parameters'] / 1e6:.2f} M | {r['batch']} x {r['crop_seconds']:g} s | {r['steps']} | {r['audio_s_per_s']:.2f} | "
                     f"{r['peak_rss_gb']:.2f} GB | {sign}{r['test_bpf']:.3f}{' (' + kl + ')' if kl else ''} | "
                     f"{MODELS[r['model']][1]} |")
    r = rows[0]
    lines.append(f"| FLAC -8 (same files) | | | | | | {r['flac']:.3f} | 8.58 |")
    lines.append("| uniform over 2^16 | | | | | | 16.000 | 16.00 |")
    head = (f"librispeech-100-mini: train split (200 files) for {args.minutes} min wall clock per model "
            f"({args.parallel} at a time, {args.threads} thread(s) each), test split ({r['files']} files, "
            f"{r['seconds']:.0f} s); 16-bit mu-law, DMoL 10, stride 64, each config's batch of crops, lr {args.lr}.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--bind", action="append", default=[], help="extra gin binding for every model (tiny runs)")
    ap.add_argument("--shared")
    ap.add_argument("--out", type=Path, default=Path("bench-likelihood"))
    args = ap.parse_args()
    data = shared_dir(args.shared) / "data" / "librispeech-100-mini"
    if not (data / "train.txt").exists():
        raise SystemExit(f"{data} not found: set AUDIOGEN_SHARED or --shared")
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.models.split(",")]
    rows, queue, running = [], list(names), []
    while queue or running:
        while queue and len(running) < args.parallel:
            running.append(start(queue.pop(0), args, data, args.out))
        job = running.pop(0)
        rows.append(finish(job, args, data))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "active_units"}), flush=True)
    rows.sort(key=lambda r: names.index(r["model"]))
    md = table(rows, args)
    (args.out / "likelihood.md").write_text(md)
    (args.out / "likelihood.json").write_text(json.dumps(rows, indent=1))
    print(md)
    best = min(rows, key=lambda r: r["test_bpf"])
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": f"best test bits/frame ({best['model']})", "value": round(best["test_bpf"], 3), "unit": "bits/frame",
        "conditions": f"{args.minutes:g} min per model ({', '.join(names)}), {args.threads} thread(s), "
                      f"FLAC {best['flac']:.3f}"}))


if __name__ == "__main__":
    main()
