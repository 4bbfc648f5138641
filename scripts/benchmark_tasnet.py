#!/usr/bin/env python
"""Cost of the Conv-TasNet coders: parameters, training FLOPs and seconds per in-process training step of
pipelines/cwvae_tasnet_speech.gin beside cwvae_l2_speech.gin (Conv1d coders), at full size on random audio of the
training shape (batch 4 x 2 s, one thread by default).

    OMP_NUM_THREADS=1 python scripts/benchmark_tasnet.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from audiogen import config
from audiogen.pipeline import build_pipeline

PIPELINES = ["pipelines/cwvae_l2_speech.gin", "pipelines/cwvae_tasnet_speech.gin"]


def measure(gin_file: str, binds: list[str], steps: int) -> dict:
    """Parameters, training FLOPs (one warm-up step) and wall/CPU seconds per in-process training step of a
    pipeline config on random audio of the training shape (batch 4 x 2 s)."""
    config.parse([gin_file], binds)
    torch.manual_seed(0)
    pipe = build_pipeline()
    opt = torch.optim.Adam(pipe.parameters(), 3e-4)
    x = torch.rand(4, 1, 32000) * 0.2 - 0.1
    m = torch.ones(4, 32000, dtype=torch.bool)

    def step():
        opt.zero_grad()
        pipe.training_loss(x, m, 0)["loss"].backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    cpu = (time.process_time() - c0) / steps  # less sensitive than wall time to other load on the machine
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    return {"pipeline": gin_file, "parameters": count(pipe), "encoder_parameters": count(pipe.encoder),
            "decoder_parameters": count(pipe.decoder), "train_gflop_per_step": counter.get_total_flops() / 1e9,
            "s_per_step": (time.perf_counter() - t0) / steps, "cpu_s_per_step": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bind", action="append", default=[], help="extra gin bindings (both pipelines)")
    ap.add_argument("--quick", action="store_true", help="1 step each (benchmark_all's headline mode).")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = 1 if args.quick else args.steps
    res = []
    for gin_file in PIPELINES:
        res.append(measure(gin_file, args.bind, steps))
        print(json.dumps(res[-1]))
    ratio = res[-1]["cpu_s_per_step"] / res[0]["cpu_s_per_step"]
    print("HEADLINE " + json.dumps({"figure": f"CPU time per training step, {res[-1]['pipeline']} / {res[0]['pipeline']}",
                                    "value": round(ratio, 2), "unit": "x",
                                    "conditions": f"batch 4 x 2 s, {args.threads} thread(s), {steps} step(s)"}))


if __name__ == "__main__":
    main()
