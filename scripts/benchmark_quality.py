#!/usr/bin/env python
"""Sample quality of every shipped latent prior, as Fréchet distances to held-out data next to their floor.

1. ``audiogen encode`` librispeech-100-mini train, and valid + test together as the held-out set (51 files, each
   another speaker), with the shared RAVE export (posterior-mean latents);
2. ``audiogen train-prior`` each prior's shipped config (pipelines/vrnn_latents.gin, srnn_latents.gin,
   cwvae_latents.gin, diffwave_latents.gin) on the train latents for ``--minutes`` of wall clock
   (``--parallel`` at a time, ``--threads`` each);
3. ``audiogen evaluate --run RUN TEST_LATENTS --quality-samples N``: N sequences of 64 frames sampled and decoded,
   compared with two halves of as many held-out crops of 64 frames, from disjoint held-out files (decoded by the
   same RAVE model), every figure averaged over 5 re-partitions of those files (audiogen.quality.SPLITS: which
   speakers land in which half moves a single split's floor by a factor of several):
   Fréchet distance on latent windows (4 frames x 8 dims) and on log-mel frames (40 bins, 16 ms hop) of decoded
   audio, each beside its floor (the same distance between the two held-out halves, same vector count), the
   per-dimension mean and std of generated latents vs the training data's (the prior's target; vs the held-out
   data's beside it), and the near-silent frame fraction (-50 dBFS, 20 ms)
   of decoded samples vs decoded held-out latents.
4. The same figures for train-split latents in place of samples: what a perfect prior would score here (the gap
   between the two splits, and the estimate's noise at this vector count).

Target (DiffWave): both distances within 2x their floor, per-dimension mean within 0.1 std and std within 10%.

    python scripts/benchmark_quality.py --minutes 20 --parallel 2 --threads 1 --out bench-quality
    python scripts/benchmark_quality.py --quick          # tiny: 16 train files, 0.1 min per prior, 16 samples
    python scripts/benchmark_quality.py --calibrate 5    # the floor's noise: a perfect prior at 5 evaluation seeds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

PRIORS = {"VRNN": "pipelines/vrnn_latents.gin", "SRNN": "pipelines/srnn_latents.gin",
          "CW-VAE": "pipelines/cwvae_latents.gin", "DiffWave": "pipelines/diffwave_latents.gin"}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "audiogen", *map(str, args)]


def encode(model: Path, listing: Path | list[Path], limit: int | None, out: Path, env: dict) -> Path:
    """Encode the files of one listing, or of several in order (the first ``limit`` of them)."""
    if not (out / "meta.json").exists():
        listings = listing if isinstance(listing, list) else [listing]
        files = [lst.parent / p for lst in listings for p in lst.read_text().split()][:limit]
        subprocess.run(cli("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{model}'", *files,
                           "-o", out, "--no-progress"), check=True, env=env, stdout=subprocess.DEVNULL)
    return out


def setup(args) -> tuple[Path, Path, dict]:
    """librispeech-100-mini and the shared RAVE export (checked), ``args.out`` made, the environment of every
    command (``args.threads`` OpenMP threads)."""
    shared = shared_dir(args.shared)
    data, model = shared / "data" / "librispeech-100-mini", shared / "models" / args.model
    if not (data / "train.txt").exists() or not model.exists():
        raise SystemExit(f"{data} or {model} not found: set AUDIOGEN_SHARED or --shared")
    args.out.mkdir(parents=True, exist_ok=True)
    return data, model, {**os.environ, "OMP_NUM_THREADS": str(args.threads)}


def start(name: str, args, lat: Path, env: dict) -> dict:
    run = args.out / name.replace("-", "").lower()
    binds = [f"train.max_minutes={args.minutes}", "train.max_steps=100000000", f"train.threads={args.threads}",
             *args.bind]
    cmd = cli("train-prior", "--gin", PRIORS[name], *[a for b in binds for a in ("--bind", b)], lat, "-o", run,
              "--no-progress")
    log = open(args.out / f"{run.name}.train.log", "a")
    if (run / "model.ckpt").exists():  # a finished run is reused (re-run only the evaluation); delete it to retrain
        return {"name": name, "run": run, "t0": time.time(), "log": log, "proc": None}
    return {"name": name, "run": run, "t0": time.time(), "log": log,
            "proc": subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)}


def finish(job: dict, args, test: Path, env: dict) -> dict:
    status = job["proc"].wait() if job["proc"] is not None else 0
    job["log"].close()
    if status != 0:
        raise SystemExit(f"{job['name']} training failed; see {job['log'].name}")
    ev = job["run"] / "eval"
    subprocess.run(cli("evaluate", "--run", job["run"], test, "--quality-samples", args.samples, "-o", ev, "--overwrite",
                       "--no-progress"), check=True, env=env, stdout=subprocess.DEVNULL)
    res = json.loads((ev / "evaluation.json").read_text())
    q = res["quality"]
    return {"prior": job["name"], "steps": res["global_step"], "train_wall_s": time.time() - job["t0"],
            "latent": q["latent"], "log_mel": q.get("log_mel"),
            "max_std_error": q["latents_vs_training"]["max_abs_std_error"],
            "max_mean_shift_std": q["latents_vs_training"]["max_abs_mean_shift_in_std"],
            "std_ratio": q["latents_vs_training"]["std_ratio"],
            "held_out_max_std_error": q["latents"]["max_abs_std_error"],
            "held_out_max_mean_shift_std": q["latents"]["max_abs_mean_shift_in_std"],
            "near_silent": q.get("audio", {}).get("near_silent_frame_fraction"),
            "held_out_near_silent": q.get("reference_audio", {}).get("near_silent_frame_fraction"),
            "score": res.get("bits_per_frame", res.get("mean_loss")),
            "score_unit": "bits/frame" if "bits_per_frame" in res else "denoising loss",
            "compared_with": q["compared_with"]}


def real_row(lat: Path, test: Path, args, seed: int = 0, splits: int | None = None) -> dict:
    """What a perfect prior would score: train-split latents in place of samples (as many frames as the priors
    sample), against the same held-out frames and floor as ``evaluate`` uses (seed 0; ``splits`` default
    quality.SPLITS)."""
    import torch

    from audiogen import quality
    from audiogen.latents.decode import decoder_pipeline
    from audiogen.latents.sequences import open_sequences
    from audiogen.workflows.evaluate_prior import QUALITY_FRAMES
    from audiogen.workflows.sample import audio_diagnostics, latent_diagnostics

    torch.set_num_threads(args.threads)
    train, held_ds = open_sequences(lat), open_sequences(test)
    dec = decoder_pipeline(train.record).decoder
    # train crops stand in for samples: half A of held_out(train) (its own seed); the held-out halves are evaluate's
    fake = quality.held_out(train, args.samples, QUALITY_FRAMES, seed=seed + 1, dec=dec, splits=1)["halves"][0]
    held = quality.held_out(held_ds, args.samples, QUALITY_FRAMES, seed=seed, dec=dec,
                            splits=quality.SPLITS if splits is None else splits)
    q = quality.measure(fake["latents"], held, fake["audio"], train.record.sample_rate, seed)
    lat_d = latent_diagnostics(np.stack(fake["latents"]), train.record.stats)
    lat_h = latent_diagnostics(np.stack(fake["latents"]), held_ds.record.stats)
    return {"prior": "train-split latents (a perfect prior)", "steps": "-", "latent": q["latent"],
            "log_mel": q.get("log_mel"), "max_std_error": lat_d["max_abs_std_error"],
            "max_mean_shift_std": lat_d["max_abs_mean_shift_in_std"], "std_ratio": lat_d["std_ratio"],
            "held_out_max_std_error": lat_h["max_abs_std_error"],
            "held_out_max_mean_shift_std": lat_h["max_abs_mean_shift_in_std"],
            "near_silent": audio_diagnostics(fake["audio"], train.record.sample_rate)["near_silent_frame_fraction"],
            "held_out_near_silent": audio_diagnostics(held["halves"][0]["audio"], train.record.sample_rate)[
                "near_silent_frame_fraction"], "score": None, "score_unit": "",
            "compared_with": f"{len(fake['latents'])} crops of {QUALITY_FRAMES} frames from {len(fake['files'])} "
                             f"train files"}


def calibrate(lat: Path, test: Path, args) -> str:
    """The floor's own noise: the perfect prior's ratios at ``args.calibrate`` evaluation seeds, with one split of
    the held-out files and with quality.SPLITS (what a prior's figure moves by when only the seed changes)."""
    from audiogen import quality

    lines = ["| held-out splits | " + " | ".join(f"seed {k}" for k in range(args.calibrate)) + " | max / min |",
             "|---|" + "---|" * (args.calibrate + 1)]
    for splits in (1, quality.SPLITS):
        rows = [real_row(lat, test, args, seed=k, splits=splits) for k in range(args.calibrate)]
        for key, label in (("latent", "latent"), ("log_mel", "log-mel")):
            r = [row[key]["ratio"] for row in rows if row.get(key)]
            if r:
                lines.append(f"| {splits} ({label}) | " + " | ".join(f"{x:.2f}x" for x in r)
                             + f" | {max(r) / min(r):.1f} |")
    return "\n".join(lines) + "\n"


def met(r: dict) -> bool:
    """The target: both distances within 2x the floor, per-dimension mean within 0.1 std and std within 10%."""
    ratios = [r["latent"]["ratio"], (r["log_mel"] or {}).get("ratio")]
    return bool(all(x is not None and x <= 2 for x in ratios)
                and r["max_std_error"] <= 0.1 and r["max_mean_shift_std"] <= 0.1)


def _fd(d: dict | None) -> str:
    if not d or d.get("distance") is None:
        return "n/a | n/a | n/a"
    rng = d.get("ratio_range")
    spread = f" ({rng[0]:.2f}-{rng[1]:.2f})" if rng and d.get("splits", 1) > 1 else ""  # per split: the estimate's noise
    return f"{d['distance']:.3g} | {d['floor']:.3g} | {d['ratio']:.2f}x{spread}"


def table(rows: list[dict], args, info: str) -> str:
    lines = ["| prior | steps | latent FD | floor | ratio | log-mel FD | floor | ratio | max \\|std ratio - 1\\| | "
             "max \\|mean shift\\| (std) | same vs held-out | near-silent (held-out) | held-out score |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        silent = "n/a" if r["near_silent"] is None else f"{r['near_silent']:.0%} ({r['held_out_near_silent']:.0%})"
        lines.append(f"| {r['prior']} | {r['steps']} | {_fd(r['latent'])} | {_fd(r['log_mel'])} | "
                     f"{r['max_std_error']:.3f} | {r['max_mean_shift_std']:.3f} | "
                     f"{r['held_out_max_std_error']:.3f}, {r['held_out_max_mean_shift_std']:.3f} | {silent} | "
                     f"{'' if r['score'] is None else format(r['score'], '.3f')} {r['score_unit']} |")
    r = rows[0]
    mel = r["log_mel"] or {}
    head = (f"{info}; {args.minutes:g} min of train-prior per prior ({args.parallel} at a time, {args.threads} "
            f"thread(s) each); {r['compared_with']}; latent windows: {r['latent']['vectors']} vectors of "
            f"{r['latent']['dims']} per side, distances and floors averaged over {r['latent'].get('splits', 1)} splits of the "
            f"held-out files (ratio: mean distance / mean floor, in brackets the range of the per-split ratios); log-mel: {mel.get('vectors', 'n/a')} vectors of {mel.get('dims', 'n/a')}"
            f" per side" + (" (quick mode: tiny run, figures are not results)" if args.quick else ""))
    return head + "\n\n" + "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--priors", default=",".join(PRIORS), help="comma-separated subset of " + ", ".join(PRIORS))
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=256, help="sequences of 64 frames sampled per prior (256: "
                    "the moments of 64 real crops already miss the 10%% std target by sampling noise)")
    ap.add_argument("--train-files", type=int, help="first N files of the train split (default all 200)")
    ap.add_argument("--held-out-files", type=int, help="first N files of test + valid (default all 51; 26: the test split alone)")
    ap.add_argument("--model", default="rave-v2small-librispeech16k.ts")
    ap.add_argument("--bind", action="append", default=[], help="extra binding for every train-prior")
    ap.add_argument("--quick", action="store_true", help="tiny run: 16 train files (held-out set whole), 0.1 min per prior, 16 samples, 1 thread")
    ap.add_argument("--calibrate", type=int, default=0, metavar="K",
                    help="only the perfect prior's ratios at K evaluation seeds, one split vs quality.SPLITS")
    ap.add_argument("--shared")
    ap.add_argument("--out", type=Path, default=Path("bench-quality"))
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.train_files, args.samples, args.threads = 0.1, 16, 16, 1
    data, model, env = setup(args)
    tag = lambda n: "all" if n is None else str(n)  # noqa: E731 - encoded sets of other sizes are kept apart
    lat = encode(model, data / "train.txt", args.train_files, args.out / f"latents_train_{tag(args.train_files)}", env)
    test = encode(model, [data / "test.txt", data / "valid.txt"], args.held_out_files,
                  args.out / f"latents_heldout_{tag(args.held_out_files)}", env)
    meta = json.loads((lat / "meta.json").read_text())
    info = (f"RAVE {args.model} latents ({meta['latent_size']} dims, {meta['sample_rate'] / meta['hop']:.2f} frames/s)"
            f" of librispeech-100-mini: {len(meta['files'])} train files, held-out valid + test "
            f"{len(json.loads((test / 'meta.json').read_text())['files'])} files")
    if args.calibrate:
        md = f"{info}; {args.samples} train crops of 64 frames as samples\n\n" + calibrate(lat, test, args)
        (args.out / "calibration.md").write_text(md)
        print(md)
        return 0
    names = [n.strip() for n in args.priors.split(",") if n.strip()]
    unknown = set(names) - set(PRIORS)
    if unknown:
        raise SystemExit(f"unknown prior(s) {sorted(unknown)}; choose from {', '.join(PRIORS)}")
    rows, queue, running = [], list(names), []
    while queue or running:
        while queue and len(running) < args.parallel:
            running.append(start(queue.pop(0), args, lat, env))
        rows.append(finish(running.pop(0), args, test, env))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "std_ratio"}), flush=True)
    rows.sort(key=lambda r: names.index(r["prior"]))
    rows.append(real_row(lat, test, args))
    print(json.dumps({k: v for k, v in rows[-1].items() if k != "std_ratio"}), flush=True)
    md = table(rows, args, info)
    (args.out / "quality.md").write_text(md)
    (args.out / "quality.json").write_text(json.dumps(rows, indent=1))
    print(md)
    if len(rows) == 1:  # --priors "": the calibration row alone, no target to meet
        print("HEADLINE " + json.dumps({"figure": "train-split latents (a perfect prior): latent Fréchet distance / "
                                        "held-out floor", "value": round(rows[0]["latent"]["ratio"], 2),
                                        "unit": "x floor", "conditions": f"{args.samples} crops x 64 frames"}))
        return 0
    head = next((r for r in rows if r["prior"] == "DiffWave"), rows[0])
    mel = head["log_mel"] or {}
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": f"{head['prior']} latent Fréchet distance / held-out floor",
        "value": None if head["latent"]["ratio"] is None else round(head["latent"]["ratio"], 2), "unit": "x floor",
        "conditions": f"{args.minutes:g} min per prior, {args.threads} thread(s), {head['steps']} steps, "
                      f"{args.samples} samples x 64 frames; log-mel {mel.get('ratio') or float('nan'):.2f}x floor, "
                      f"max |std ratio - 1| {head['max_std_error']:.3f}" + (" (quick mode)" if args.quick else ""),
        "target": "latent and log-mel distance <= 2x floor, mean and std within 10%", "met": met(head)}))
    return 0 if met(head) else 1


if __name__ == "__main__":
    sys.exit(main())
