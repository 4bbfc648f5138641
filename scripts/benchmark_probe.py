#!/usr/bin/env python
"""What the representations capture (issue 6's benchmark): CPC pretraining, then kNN probes on FSDD.

Stages (each skipped when its output exists in --work, so an interrupted benchmark resumes):
1. ``cpc``: ``audiogen train --gin encoders/cpc_pretrain.gin`` on librispeech-100-mini/train for --minutes of wall
   clock (valid: librispeech valid); reports steps and the last validation prediction accuracy.
2. ``cwvae``: a 2-level Clockwork VAE (pipelines/cwvae_l2_speech.gin at FSDD's 8 kHz: level hops 64 and 512,
   8 and 64 ms) trained on FSDD/train for --minutes. Stages 1 and 2 run side by side (one thread each) by default.
3. ``probe``: ``audiogen probe`` on the FSDD test split (300 files, 10 digits, 6 speakers) for the CPC context,
   the CW-VAE's z1 and z2 (posterior means) and log-mel features at the level-1 hop of each model: leave-one-out
   kNN accuracy for k = 1, 5 (standardised features) and kNN in a 5-D cross-validated LDA subspace (the paper's
   read-out), for digit and for speaker.

    python scripts/benchmark_probe.py --minutes 15 --work bench-probe
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]


def audiogen() -> list[str]:
    return [sys.executable, "-m", "audiogen"]


def metrics(run: Path) -> list[dict]:
    rows = []
    for f in sorted((run / "logs").glob("version_*/metrics.csv")):
        with open(f) as fh:
            rows += list(csv.DictReader(fh))
    return rows


def last_value(rows: list[dict], key: str) -> float | None:
    vals = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return vals[-1] if vals else None


def accuracy_key(rows: list[dict]) -> str | None:
    """The mean prediction accuracy over future steps, whatever the objective calls it."""
    keys = [k for k in (rows[0] if rows else {}) if k.startswith("valid/") and "acc" in k]
    mean = [k for k in keys if not any(c.isdigit() for c in k.split("/", 1)[1])]
    return (mean or keys or [None])[0]


def train_commands(args, sh: Path, work: Path) -> dict[str, list[str]]:
    ls = sh / "data" / "librispeech-100-mini"
    fsdd = sh / "data" / "fsdd"
    train_list = work / "fsdd_train.txt"
    with open(fsdd / "labels.csv") as f:
        train_list.write_text("".join(str(fsdd / r["path"]) + "\n" for r in csv.DictReader(f)
                                      if r["split"] == "train"))
    common = [f"train.max_minutes={args.minutes}", f"train.threads={args.threads}", "train.max_steps=10000000"]
    bind = [a for b in common for a in ("--bind", b)]
    return {
        "cpc": audiogen() + ["train", "--gin", "encoders/cpc_pretrain.gin", *bind, str(ls / "train.txt"),
                             "--valid", str(ls / "valid.txt"), "-o", str(work / "cpc"), "--no-progress"],
        "cwvae": audiogen() + ["train", "--gin", "pipelines/cwvae_l2_speech.gin", "--gin", "data/fsdd8k.gin", *bind,
                               "--bind", "train.val_every=500", str(train_list), "-o", str(work / "cwvae"),
                               "--no-progress"],
    }


def run_training(args, sh: Path, work: Path) -> dict:
    cmds = {k: v for k, v in train_commands(args, sh, work).items() if not (work / k / "model.ckpt").exists()}
    procs, t0 = {}, time.time()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for name, cmd in cmds.items():
        print("$", " ".join(cmd), flush=True)
        log = open(work / f"{name}.log", "w")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if not args.parallel:
            procs[name].wait()
    for name, p in procs.items():
        if p.wait() != 0:
            sys.exit(f"{name} training failed; see {work / (name + '.log')}")
    out = {}
    for name in ("cpc", "cwvae"):
        rows = metrics(work / name)
        steps = max((int(r["step"]) for r in rows if r.get("step")), default=0) + 1
        out[name] = {"steps": steps}
        if name == "cpc":
            key = accuracy_key(rows)
            out[name].update(valid_accuracy=last_value(rows, key) if key else None, accuracy_metric=key)
        else:
            out[name]["train_loss_last"] = last_value(rows, "train/loss_step")
    out["training_wall_s"] = round(time.time() - t0, 1)
    return out


def run_probes(args, sh: Path, work: Path) -> dict:
    fsdd = sh / "data" / "fsdd"
    where = [] if args.split == "all" else ["--where", f"split={args.split}"]
    res = {}
    for name in ("cpc", "cwvae"):
        out = work / f"probe_{name}"
        if not (out / "probe.json").exists():
            cmd = audiogen() + ["probe", "--run", str(work / name), "--labels", str(fsdd / "labels.csv"), *where,
                                "--label", "digit", "--label", "speaker", "--k", "1", "--k", "5", "-o", str(out)]
            print("$", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        res[name] = json.loads((out / "probe.json").read_text())
    return res


def table(probes: dict) -> tuple[str, dict]:
    rows = [("mel (hop 64, 8 kHz)", "cwvae", "mel"), ("mel (hop 160, 16 kHz)", "cpc", "mel"),
            ("CPC context (hop 160)", "cpc", "enc1"), ("CW-VAE z1 (hop 64)", "cwvae", "z1"),
            ("CW-VAE z2 (hop 512)", "cwvae", "z2")]
    head = "| representation | digit k=1 | digit k=5 | speaker k=1 | speaker k=5 | digit LDA5 k=1 | digit LDA5 k=5 " \
           "| speaker LDA5 k=1 | speaker LDA5 k=5 |"
    lines = [head, "|" + "---|" * 9]
    flat = {}
    for title, src, rep in rows:
        cells = []
        for readout in ("knn", "lda_knn"):
            for label in ("digit", "speaker"):
                r = probes[src]["labels"][label]["per_representation"][rep][readout]
                for k in ("1", "5"):
                    v = r.get(k, r.get(int(k))) if isinstance(r, dict) else None
                    cells.append(v)
                    flat[f"{rep}@{src}/{label}/{readout}/k{k}"] = v
        order = [0, 1, 2, 3, 4, 5, 6, 7]
        lines.append(f"| {title} | " + " | ".join(f"{cells[i]:.3f}" for i in order) + " |")
    chance = {lb: probes["cwvae"]["labels"][lb]["chance"] for lb in ("digit", "speaker")}
    lines.append(f"\nchance (majority class): digit {chance['digit']:.3f}, speaker {chance['speaker']:.3f}; "
                 f"{probes['cwvae']['items']} FSDD files")
    return "\n".join(lines), flat


def verdict(flat: dict) -> str:
    out = []
    for label in ("digit", "speaker"):
        for readout in ("knn", "lda_knn"):
            mel = flat[f"mel@cwvae/{label}/{readout}/k5"]
            for rep in ("z1@cwvae", "z2@cwvae", "enc1@cpc"):
                v = flat[f"{rep}/{label}/{readout}/k5"]
                out.append(f"{label} {readout} k=5: {rep.split('@')[0].replace('enc1', 'CPC')} {v:.3f} "
                           f"{'beats' if v > mel else 'does not beat'} mel {mel:.3f}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="Wall-clock minutes per training.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                    help="Train CPC and the CW-VAE at the same time (one process each).")
    ap.add_argument("--split", default="test", help="FSDD split to probe: test (300 files), train or all.")
    ap.add_argument("--work", type=Path, default=Path("bench-probe"))
    ap.add_argument("--shared")
    args = ap.parse_args()
    sh = shared_dir(args.shared)
    args.work.mkdir(parents=True, exist_ok=True)
    training = run_training(args, sh, args.work)
    probes = run_probes(args, sh, args.work)
    text, flat = table(probes)
    print(f"\nCPC pretraining: {training['cpc']['steps']} steps in {args.minutes} min, last valid prediction accuracy "
          f"{training['cpc']['valid_accuracy']} ({training['cpc']['accuracy_metric']})")
    print(f"CW-VAE L=2 on FSDD/train: {training['cwvae']['steps']} steps in {args.minutes} min\n")
    print(text)
    print("\n" + verdict(flat))
    summary = {"training": training, "probe": flat}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=1))
    z1, mel = flat["z1@cwvae/digit/knn/k5"], flat["mel@cwvae/digit/knn/k5"]
    print("HEADLINE " + json.dumps({"figure": "FSDD digit kNN (k=5, leave-one-out) from CW-VAE z1", "value": z1,
                                    "unit": "accuracy",
                                    "conditions": f"{args.minutes} min training; mel {mel:.3f}; CPC context "
                                                  f"{flat['enc1@cpc/digit/knn/k5']:.3f}; CPC valid accuracy "
                                                  f"{training['cpc']['valid_accuracy']}"}))


if __name__ == "__main__":
    main()
