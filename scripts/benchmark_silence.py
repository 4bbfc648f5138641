#!/usr/bin/env python
"""What makes a latent prior decode to silence: short runs of the shipped likelihood priors, ablated, sampled at
several temperatures, each sample set decoded by the dataset's RAVE model and measured.

1. ``audiogen encode`` librispeech-100-mini train with the shared RAVE export (as scripts/benchmark_quality.py,
   whose encoded latents in ``--out`` are reused);
2. ``audiogen train-prior`` each prior (pipelines/vrnn_latents.gin, srnn_latents.gin, cwvae_latents.gin) for
   each of ``--minutes`` (training lengths) in each variant: as shipped (latents normalised, output minimum std 0.01), normalisation off
   (``train_prior.normalize=False``: the prior sees raw latents), output minimum std 0.1;
3. ``audiogen sample --run RUN -n N --frames 64 --temperature T`` for each temperature: near-silent frame fraction
   (-50 dBFS, 20 ms frames) of the decoded samples beside decoded dataset latents of the same length, and the
   generated latents' std over the dataset's (the worst dimension).

    python scripts/benchmark_silence.py --minutes 1,5 --parallel 2 --threads 1 --out bench-silence
    python scripts/benchmark_silence.py --quick      # tiny: 16 train files, 0.1 min, one prior, 4 samples
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmark_quality import PRIORS, cli, encode, setup  # scripts/ is on sys.path when a script runs

VARIANTS = {"shipped": [], "normalize off": ["train_prior.normalize=False"],
            "output min std 0.1": ["distributions.gaussian.min_std=0.1"]}
LIKELIHOOD_PRIORS = ("VRNN", "SRNN", "CW-VAE")


def train(prior: str, variant: str, minutes: float, args, lat: Path, env: dict) -> tuple[Path, subprocess.Popen | None]:
    run = args.out / f"{prior.replace('-', '').lower()}_{variant.replace(' ', '_').replace('.', '')}_{minutes:g}min"
    if (run / "model.ckpt").exists():  # a finished run is reused; delete it to retrain
        return run, None
    binds = [f"train.max_minutes={minutes}", "train.max_steps=100000000", f"train.threads={args.threads}",
             *VARIANTS[variant]]
    log = open(args.out / f"{run.name}.train.log", "w")
    return run, subprocess.Popen(cli("train-prior", "--gin", PRIORS[prior], *[a for b in binds for a in ("--bind", b)],
                                     lat, "-o", run, "--no-progress"), stdout=log, stderr=subprocess.STDOUT, env=env)


def measure(prior: str, variant: str, minutes: float, run: Path, args, env: dict) -> dict:
    row = {"prior": prior, "variant": variant, "minutes": minutes, "run": str(run)}
    for t in args.temperatures:
        out = run / f"samples_t{t:g}"
        subprocess.run(cli("sample", "--run", run, "-n", args.samples, "--frames", 64, "--temperature", t, "-o", out,
                           "--overwrite", "--no-progress"), check=True, env=env, stdout=subprocess.DEVNULL)
        rec = json.loads((out / "samples.json").read_text())
        d = rec["diagnostics"]
        row["steps"] = rec["global_step"]
        row[f"silent_t{t:g}"] = d["audio"]["near_silent_frame_fraction"]
        row["reference_silent"] = d["reference_audio"]["near_silent_frame_fraction"]
        row[f"std_ratio_t{t:g}"] = [min(d["latents"]["std_ratio"]), max(d["latents"]["std_ratio"])]
    return row


def table(rows: list[dict], args) -> str:
    ts = args.temperatures
    lines = ["| prior | variant | minutes | steps | " + " | ".join(f"near-silent, T={t:g}" for t in ts)
             + " | decoded data | " + " | ".join(f"std / data's, T={t:g}" for t in ts) + " |",
             "|---|---|---|---|" + "---|" * (2 * len(ts) + 1)]
    for r in rows:
        lines.append(f"| {r['prior']} | {r['variant']} | {r['minutes']:g} | {r['steps']} | "
                     + " | ".join(f"{r[f'silent_t{t:g}']:.0%}" for t in ts) + f" | {r['reference_silent']:.0%} | "
                     + " | ".join("{:.2f}-{:.2f}".format(*r[f"std_ratio_t{t:g}"]) for t in ts) + " |")
    return (f"train-prior for the minutes shown ({args.parallel} at a time, {args.threads} thread(s) each), "
            f"{args.samples} samples x 64 frames per temperature, near-silent = 20 ms frames below -50 dBFS; decoded "
            f"data = dataset latents of the same length, decoded by the same RAVE model"
            + (" (quick mode: tiny run, figures are not results)" if args.quick else "") + "\n\n"
            + "\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", default="1", help="comma-separated training lengths (wall-clock minutes per run)")
    ap.add_argument("--priors", default=",".join(LIKELIHOOD_PRIORS))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--temperatures", default="1,0.5,0", help="comma-separated sampling temperatures")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=32, help="sequences of 64 frames per run and temperature")
    ap.add_argument("--train-files", type=int, help="first N files of the train split (default all 200)")
    ap.add_argument("--model", default="rave-v2small-librispeech16k.ts")
    ap.add_argument("--quick", action="store_true", help="tiny run: 16 train files, 0.1 min, VRNN only, 4 samples")
    ap.add_argument("--shared")
    ap.add_argument("--out", type=Path, default=Path("bench-silence"))
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.train_files, args.samples, args.threads, args.priors = "0.1", 16, 4, 1, "VRNN"
    minutes = [float(m) for m in args.minutes.split(",")]
    args.temperatures = [float(t) for t in args.temperatures.split(",")]
    priors = [p.strip() for p in args.priors.split(",") if p.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = (set(priors) - set(LIKELIHOOD_PRIORS)) | (set(variants) - set(VARIANTS))
    if bad:
        raise SystemExit(f"unknown prior(s) or variant(s) {sorted(bad)}; priors: {', '.join(LIKELIHOOD_PRIORS)}; "
                         f"variants: {', '.join(VARIANTS)}")
    data, model, env = setup(args)
    tag = "all" if args.train_files is None else str(args.train_files)
    lat = encode(model, data / "train.txt", args.train_files, args.out / f"latents_train_{tag}", env)
    jobs = [(p, v, m) for m in minutes for p in priors for v in variants]
    runs, running = [], []
    t0 = time.time()
    # every training first, then every sampling: a sampling run would take CPU from a training still in its minutes
    while jobs or running:
        while jobs and len(running) < args.parallel:
            p, v, m = jobs.pop(0)
            running.append((p, v, m, *train(p, v, m, args, lat, env)))
        p, v, m, run, proc = running.pop(0)
        if proc is not None and proc.wait() != 0:
            raise SystemExit(f"{p} ({v}, {m:g} min) training failed; see {args.out / (run.name + '.train.log')}")
        runs.append((p, v, m, run))
    rows = []
    order = list(VARIANTS)  # the shipped variant first: it gives the headline
    for p, v, m, run in sorted(runs, key=lambda r: (priors.index(r[0]), order.index(r[1]), r[2])):
        rows.append(measure(p, v, m, run, args, env))
        print(json.dumps(rows[-1]), flush=True)
    md = table(rows, args)
    (args.out / "silence.md").write_text(md)
    (args.out / "silence.json").write_text(json.dumps(rows, indent=1))
    print(md)
    print(f"wall {time.time() - t0:.0f} s")
    r, t = rows[0], args.temperatures[0]
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": f"{r['prior']} ({r['variant']}) near-silent frames of decoded samples, T={t:g}",
        "value": round(100 * r[f"silent_t{t:g}"], 1), "unit": "% of 20 ms frames",
        "conditions": f"{r['minutes']:g} min train-prior, {r['steps']} steps, {args.threads} thread(s), "
                      f"{args.samples} samples x 64 frames; decoded data {100 * r['reference_silent']:.0f}%"
                      + (" (quick mode)" if args.quick else "")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
