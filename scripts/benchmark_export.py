"""Cost of an exported prior's `prior` method per block, against the real time a block of RAVE latents covers.

Priors at the shipped configs' sizes (pipelines/vrnn_latents.gin, srnn_latents.gin, diffwave_latents.gin) with
random weights (speed does not depend on training), scripted as `audiogen export` scripts them, called as nn~
calls them: batch 1, blocks of `--block` frames of 8 latent dimensions, the shared RAVE model's hop (512 at 16 kHz:
a frame is 32 ms). Real-time factor = audio time covered / compute time (above 1 keeps up). The DiffWave figure is
the mean over a stream: one window of W frames (W - context new frames) every few calls.

    python scripts/benchmark_export.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import gin
import torch

from audiogen import config
from audiogen.export_steps import generator_for
from audiogen.pipeline import build_pipeline

warnings.filterwarnings("ignore", category=DeprecationWarning)
HOP, SR, D = 512, 16000, 8


def scripted(gin_file: str, binds: list[str], window: int, steps: int):
    gin.clear_config()
    config.parse([gin_file], [f"LATENT_SIZE={D}", *binds])
    prior = build_pipeline().prior.eval()
    for p in prior.parameters():
        p.requires_grad_(False)
    return torch.jit.script(generator_for(prior, window, window // 4, steps))


def stream_cost(gen, block: int, seconds: float) -> tuple[float, float]:
    """(seconds of compute per second of audio over a stream of ``seconds``, the slowest call over the time its
    block covers: above 1, that call alone makes nn~ miss its deadline unless nn~ buffers more)."""
    n = max(1, round(seconds * SR / HOP / block))
    x = torch.zeros(1, D, block)
    gen(x, False, 1.0)  # warm-up (TorchScript profiles the first calls)
    gen(x, False, 1.0)
    calls = []
    for _ in range(n):
        t0 = time.perf_counter()
        gen(x, False, 1.0)
        calls.append(time.perf_counter() - t0)
    covered = block * HOP / SR
    return sum(calls) / (n * covered), max(calls) / covered


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--block", type=int, default=4, help="frames per nn~ call (4 = 2048 samples at hop 512)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 10.0 if args.quick else 60.0
    rows = {}
    for name, gin_file, binds in (("vrnn", "pipelines/vrnn_latents.gin", []),
                                  ("srnn", "pipelines/srnn_latents.gin", []),
                                  ("lstm", "pipelines/vrnn_latents.gin", ["priors.sequence.model=@priors.lstm()",
                                                                          "priors.lstm.input_size=128",
                                                                          "priors.lstm.hidden_size=128",
                                                                          "priors.lstm.context_size=128"])):
        rows[name] = stream_cost(scripted(gin_file, binds, 64, 10), args.block, seconds)
    for steps in (10, 25):
        rows[f"diffwave_ddim{steps}"] = stream_cost(scripted("pipelines/diffwave_latents.gin", [], 64, steps),
                                                    args.block, seconds)
    for k, (mean, worst) in rows.items():
        print(f"{k:<16} real-time factor {1 / mean:8.1f}  slowest call {worst:5.2f} of its block's duration")
    cond = f"batch 1, blocks of {args.block} frames x {D} dims, hop {HOP} at {SR} Hz, {args.threads} CPU thread(s)"
    print("HEADLINE " + json.dumps({"figure": "exported DiffWave prior (64-frame windows, 10 DDIM steps) real-time "
                                    "factor", "value": round(1 / rows["diffwave_ddim10"][0], 2), "unit": "x real time",
                                    "conditions": cond + "; " + ", ".join(f"{k} {1 / m:.1f}x (slowest call {w:.2f} of its block)" for k, (m, w) in rows.items())}))


if __name__ == "__main__":
    main()
