#!/usr/bin/env python
"""Before/after timings of the hot paths, both measured in one run of this script.

The baseline revision (``--before``, default f9d7930: the commit before the performance pass) is extracted with
``git archive`` into a temporary folder; each round runs the same measurements in a child process with PYTHONPATH
on that copy, then on the working tree (alternating, so that a noisy shared machine hurts both alike), and every
figure keeps its best round. All on one thread, timed in process CPU seconds (on an idle machine the same as wall
clock; on a shared one much steadier):

- training step (forward + backward) of vrnn_speech, srnn_speech, cwvae_l2_speech at paper size, batch 4 x 2 s;
- log-prob throughput of the same models (``Pipeline.score`` without gradients: audio seconds per second);
- DMoL(10) log_prob + backward on 16-bit mu-law, 4 x 32000 samples (samples per second);
- AudioDataset with 2-second crops on librispeech-100-mini, collated in batches of 4 (items per second).

    python scripts/benchmark_perf.py --rounds 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"vrnn": "pipelines/vrnn_speech.gin", "srnn": "pipelines/srnn_speech.gin",
          "cwvae_l2": "pipelines/cwvae_l2_speech.gin"}
# name: (label, unit, higher is better)
FIGURES = {
    **{f"step_{m}": (f"{m} training step", "s", False) for m in MODELS},
    **{f"score_{m}": (f"{m} log-prob", "audio s/s", True) for m in MODELS},
    "dmol": ("DMoL log_prob + backward", "samples/s", True),
    "data": ("AudioDataset 2 s crops + collate", "items/s", True),
}


# ------------------------------------------------------------------------------------------------ child side
def _best(fn, reps: int) -> float:
    fn()  # warm-up: allocator, lazy init
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _pipeline(name: str):
    import torch

    from audiogen import config
    from audiogen.pipeline import build_pipeline

    config.parse([MODELS[name]], [])
    torch.manual_seed(0)
    return build_pipeline()


def measure_one(name: str, reps: int, data: Path) -> float:
    import torch

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 1, 32000, generator=g) * 2 - 1) * 0.1
    mask = torch.ones(4, 32000, dtype=torch.bool)
    kind, _, model = name.partition("_")
    if kind == "step":
        pipe = _pipeline(model).train()

        def step():
            pipe.zero_grad(set_to_none=True)
            pipe.training_loss(x, mask, 0)["loss"].backward()

        return _best(step, reps)
    if kind == "score":
        pipe = _pipeline(model).eval()
        with torch.no_grad():
            return 8.0 / _best(lambda: pipe.score(x, mask), reps)  # 4 x 2 s of audio
    if name == "dmol":
        from audiogen.distributions import DiscretizedLogisticMixture

        d = DiscretizedLogisticMixture(10, 16)
        params = torch.randn(4, 30, 32000, generator=g).requires_grad_()
        target = d.coding.to_model(d.coding.from_model(torch.rand(4, 1, 32000, generator=g) * 2 - 1))
        return 4 * 32000 / _best(lambda: d.log_prob(params, target).sum().backward(), reps)
    if name == "data":
        from audiogen.audio.dataset import AudioDataset, collate_audio
        from audiogen.audio.io import expand_inputs

        ds = AudioDataset(expand_inputs([data / "train.txt"]), 16000, crop=32000)

        def load():
            for i in range(0, len(ds), 4):
                collate_audio([ds[j] for j in range(i, min(i + 4, len(ds)))])

        return len(ds) / _best(load, reps)
    raise SystemExit(f"unknown measurement {name!r}; choose from {', '.join(FIGURES)}")


# ----------------------------------------------------------------------------------------------- parent side
def extract(rev: str, into: Path) -> Path:
    """``git archive`` of the package and configs at ``rev`` into ``into``."""
    # revisions before the configs moved into the package kept them in a top-level gin/
    old_gin = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{rev}:gin"], capture_output=True)
    paths = ["audiogen"] + (["gin"] if old_gin.returncode == 0 else [])
    try:
        blob = subprocess.run(["git", "-C", str(ROOT), "archive", rev, *paths], check=True,
                              capture_output=True).stdout
    except subprocess.CalledProcessError as e:
        msg = e.stderr.decode().strip()
        raise SystemExit(f"git archive {rev} failed: {msg} (pass an existing --before REV)") from None
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_child(tree: Path, names: list[str], reps: int, data: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", ",".join(names), "--reps", str(reps), "--shared", str(data.parents[1])]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"measurement on {tree} failed:\n{res.stderr[-3000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    where = Path(got.pop("audiogen")).resolve()
    if tree.resolve() not in where.parents:  # an installed audiogen shadowing PYTHONPATH would compare nothing
        raise SystemExit(f"the child imported audiogen from {where}, not from {tree}")
    return got


def table(before: dict, after: dict, rev: str) -> str:
    lines = [f"| figure | unit | before ({rev}) | after (working tree) | speedup |", "|---|---|---|---|---|"]
    for name in after:
        label, unit, higher = FIGURES[name]
        b, a = before[name], after[name]
        speedup = a / b if higher else b / a
        fmt = (lambda v: f"{v:.3f}") if unit == "s" else (lambda v: f"{v:,.1f}" if v < 1e4 else f"{v:,.0f}")
        lines.append(f"| {label} | {unit} | {fmt(b)} | {fmt(a)} | {speedup:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="f9d7930", help="baseline git revision (default f9d7930)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating before/after rounds; best round kept")
    ap.add_argument("--reps", type=int, default=2, help="timed repetitions inside a round (after one warm-up)")
    ap.add_argument("--only", default=",".join(FIGURES), help="comma-separated subset of " + ", ".join(FIGURES))
    ap.add_argument("--quick", action="store_true", help="one round (benchmark_all's headline mode)")
    ap.add_argument("--shared", help="folder holding data/ (default: AUDIOGEN_SHARED or ../shared)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = shared_dir(args.shared) / "data" / "librispeech-100-mini"
    if args.child:
        import torch

        import audiogen

        torch.set_num_threads(1)
        got = {name: measure_one(name, args.reps, data) for name in args.child.split(",")}
        print(json.dumps({"audiogen": audiogen.__file__, **got}))
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise SystemExit(f"unknown figure(s) {unknown}; choose from {', '.join(FIGURES)}")
    if "data" in names and not (data / "train.txt").exists():
        raise SystemExit(f"{data / 'train.txt'} not found: pass --shared or set AUDIOGEN_SHARED, or leave out data")
    rounds = 1 if args.quick else args.rounds
    t0 = time.perf_counter()
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory(prefix="audiogen-before-") as tmp:
        trees = {"before": extract(args.before, Path(tmp)), "after": ROOT}
        for r in range(rounds):
            for side, tree in trees.items():
                got = run_child(tree, names, args.reps, data)
                for k, v in got.items():
                    higher = FIGURES[k][2]
                    old = best[side].get(k)
                    best[side][k] = v if old is None else (max(old, v) if higher else min(old, v))
            print(f"round {r + 1}/{rounds} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"One thread, process CPU time, best of {rounds} alternating round(s) x {args.reps} repetition(s); "
          f"batch 4 x 2 s of 16 kHz audio at paper size.\n")
    print(table(best["before"], best["after"], args.before))
    head = "step_vrnn" if "step_vrnn" in names else names[0]
    label, unit, higher = FIGURES[head]
    b, a = best["before"][head], best["after"][head]
    print("HEADLINE " + json.dumps({
        "figure": f"{label} speedup over {args.before}", "value": round(a / b if higher else b / a, 3), "unit": "x",
        "conditions": f"1 thread, CPU time, best of {rounds} round(s); before {b:.4g} {unit}, after {a:.4g} {unit}"}))


if __name__ == "__main__":
    main()
