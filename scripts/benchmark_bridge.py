#!/usr/bin/env python
"""Quality of the RAVE -> DiffWave bridge, with and without the default latent normalisation.

1. ``audiogen encode`` librispeech-100-mini/train with a shared RAVE export (posterior-mean latents);
2. ``audiogen train-prior`` with pipelines/diffwave_latents.gin for ``--minutes``, once with
   ``train_prior.normalize=True`` (the default) and once with ``False``, both at the same time;
3. ``audiogen sample`` 16 clips from each (and from the un-normalised prior with DiffWave's clamp of samples to
   [-1, 1], which is what silenced the lab diary's decodes) and read the diagnostics: per-dimension mean and std of generated vs
   dataset latents (target: std within 10% and mean within 10% of a std on every dimension) and decoded RMS vs the
   RMS of decoded dataset latents of the same length (target: within 3 dB).

    python scripts/benchmark_bridge.py --minutes 20 --out bench-bridge
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> None:
    subprocess.run([sys.executable, "-m", "audiogen", *map(str, args)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--model", default="rave-v2small-librispeech16k.ts")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shared")
    ap.add_argument("--out", type=Path, default=Path("bench-bridge"))
    ap.add_argument("--bind", action="append", default=[], help="extra binding for train-prior (tiny runs)")
    args = ap.parse_args()
    shared = shared_dir(args.shared)
    data = shared / "data" / "librispeech-100-mini" / "train.txt"
    model = shared / "models" / args.model
    args.out.mkdir(parents=True, exist_ok=True)
    lat = args.out / "latents"
    if not (lat / "meta.json").exists():
        cli("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{model}'", data, "-o", lat,
            "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    rows, procs = [], []
    for normalize in (True, False):  # both trainings at once (one thread each with --threads 1)
        run = args.out / f"prior_normalize_{normalize}"
        binds = [f"LATENT_SIZE={meta['latent_size']}", f"train_prior.normalize={normalize}",
                 f"train.max_minutes={args.minutes}", "train.max_steps=100000000", f"train.threads={args.threads}",
                 *args.bind]
        cmd = ["train-prior", "--gin", "pipelines/diffwave_latents.gin", *[a for b in binds for a in ("--bind", b)],
               lat, "-o", run, "--no-progress"]
        if not (run / "model.ckpt").exists():  # a finished run is reused (re-run only the sampling)
            procs.append(subprocess.Popen([sys.executable, "-m", "audiogen", *map(str, cmd)]))
    if any(p.wait() for p in procs):
        raise SystemExit("a train-prior run failed")
    # the third row samples the un-normalised prior with DiffWave's clamp to [-1, 1]: the diary's silent decode
    for normalize, clamp in ((True, False), (False, False), (False, True)):
        run = args.out / f"prior_normalize_{normalize}"
        s = run / ("samples_clamped" if clamp else "samples")
        cli("sample", "--run", run, "-n", args.clips, "--seconds", args.seconds, "-o", s, "--overwrite",
            *(["--bind", "priors.diffwave.clip=1.0"] if clamp else []))
        rec = json.loads((s / "samples.json").read_text())
        d = rec["diagnostics"]
        steps = rec["global_step"]  # samples.json records the checkpoint's step
        lat_d = d["latents"]
        gap = d["audio"]["rms_dbfs"] - d["reference_audio"]["rms_dbfs"]
        rows.append({"normalize": normalize, "clamp": clamp, "steps": steps,
                     "max_std_error": lat_d["max_abs_std_error"], "max_mean_shift_std": lat_d["max_abs_mean_shift_in_std"],
                     "std_ratio": lat_d["std_ratio"], "mean_shift_in_std": lat_d["mean_shift_in_std"],
                     "rms_dbfs": d["audio"]["rms_dbfs"], "reference_rms_dbfs": d["reference_audio"]["rms_dbfs"],
                     "rms_gap_db": gap, "near_silent": d["audio"]["near_silent_frame_fraction"],
                     "warnings": d["warnings"]})
    lines = [f"RAVE {args.model} -> DiffWave prior ({args.minutes} min each, {meta['latent_size']} latent dims, "
             f"{len(meta['files'])} files), {args.clips} clips of {args.seconds} s", "",
             "| normalisation | steps | max \\|std ratio - 1\\| | max \\|mean shift\\| (std) | decoded RMS | decoded "
             "dataset RMS | gap | near-silent frames | targets met |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = met(r)
        label = ("on" if r["normalize"] else "off") + (", DiffWave's clamp to [-1, 1]" if r["clamp"] else "")
        lines.append(f"| {label} | {r['steps']} | {r['max_std_error']:.3f} | "
                     f"{r['max_mean_shift_std']:.3f} | {r['rms_dbfs']:.1f} dBFS | {r['reference_rms_dbfs']:.1f} dBFS | "
                     f"{r['rms_gap_db']:+.1f} dB | {r['near_silent']:.0%} | {'yes' if ok else 'no'} |")
    md = "\n".join(lines) + "\n"
    (args.out / "bridge.md").write_text(md)
    (args.out / "bridge.json").write_text(json.dumps(rows, indent=1))
    print(md)
    on = rows[0]  # normalisation on, no clamp
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "decoded RMS gap, normalised DiffWave prior vs dataset latents", "value": round(on["rms_gap_db"], 2),
        "unit": "dB", "conditions": f"{args.minutes:g} min of training, {on['steps']} steps, {args.clips} clips of "
                                    f"{args.seconds:g} s; max |std ratio - 1| {on['max_std_error']:.3f}",
        "target": "|gap| <= 3 dB, std and mean within 10%", "met": met(on)}))
    return 0 if met(on) else 1


def met(r: dict) -> bool:
    """The targets of the module docstring: std and mean within 10%, decoded RMS within 3 dB of the dataset's."""
    return bool(r["max_std_error"] <= 0.1 and r["max_mean_shift_std"] <= 0.1 and abs(r["rms_gap_db"]) <= 3)


if __name__ == "__main__":
    sys.exit(main())
