#!/usr/bin/env python
"""CW-VAE L=2 on librispeech-100-mini: the training step side by side with the paper's code, then a timed
training run through the CLI and its test bits per frame.

1. **Step, side by side** (``--rounds``, alternating, each configuration in a fresh worker process with the same
   threads, on random audio of the training shape: batch 4 x 2 s at 16 kHz, 16-bit mu-law, Adam, gradient clipping
   by value 1000 and norm 3000): seconds per training step, training FLOPs per step (torch's FLOP counter, the same
   counter for every row), the fraction of the matmul rate the worker measured just before its steps, parameters and
   the worker's peak RSS, for
   - ``audiogen default``: ``pipelines/cwvae_l2_speech.gin`` at the paper code's benchmark sizes (strides [64, 8],
     hidden 96, latent [64, 32], DMoL 10) with audiogen's conv channel pyramid 32 -> 96;
   - ``audiogen channels 96``: the same with 96 channels in every conv stage, the paper code's widths;
   - ``paper code`` (with ``--reference-python``): JakobHavtorn/benchmarking-lvms' ``CWVAEAudio`` (hidden [96, 96],
     latent [64, 32], strides [64, 8], 8 level layers, DMoL 10, 16 bits) and its own training step (forward with
     ``beta``/``free_nats``, backward, clip by value and norm, Adam), in its own interpreter. This file is run there
     with ``--worker reference`` and imports nothing from audiogen.
2. **Training** (``--minutes``, 0 skips it): ``audiogen train`` through the console script at the default
   configuration, then ``audiogen evaluate`` on the test split: bits per frame (negative ELBO), beside FLAC -8.

Target (issue 16): the training step at the paper code's widths reaches 50% of the measured matmul rate.

Setting up the reference (its requirements pin torch 1.9 and torchaudio, neither needed to build and train the
model; torchaudio is stubbed since only its data loaders use it):

    python3.11 -m venv /tmp/venv-blvm && /tmp/venv-blvm/bin/pip install torch==2.13.0 numpy torchtyping torchinfo \
        rich tqdm wandb blessed more-itertools pyyaml psutil pandas editdistance attrs soundfile
    git clone https://github.com/JakobHavtorn/benchmarking-lvms /tmp/blvm   # or any copy of its source

    python scripts/benchmark_cwvae.py --reference-python /tmp/venv-blvm/bin/python --reference-src /tmp/blvm \
        --rounds 3 --minutes 20 --out bench-cwvae
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
COMPARABLE = ["DZ=[64, 32]", "HIDDEN=96", "train.batch_size=4", "train.crop_seconds=2.0", "train.lr=1e-3"]
WIDE = ["ENCODER_CHANNELS=[96, 96, 96, 96]", "DECODER_CHANNELS=[96, 96, 96]"]
CONFIGS = {"audiogen default": COMPARABLE, "audiogen channels 96": COMPARABLE + WIDE}
PAPER = {"z_size": [64, 32], "h_size": [96, 96], "strides": [64, 8], "num_level_layers": 8, "num_mix": 10, "bits": 16}
BATCH, SAMPLES = 4, 32000  # 4 x 2 s at 16 kHz
TARGET = 0.5  # training step at the paper's widths: FLOPs per step / seconds per step / matmul rate
RECORDED = {"s_per_step": 8.2, "peak_rss_gb": 4.3, "test_bpf_15min": 16.42}  # ../shared/REFERENCE.md, its own script


def shared_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("AUDIOGEN_SHARED", ROOT.parent / "shared")).resolve()


def matmul_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - t0) / 1e9


def _timed(step, seconds: float, min_steps: int = 2) -> tuple[float, float, float, int]:
    """(GFLOP of one counted warm-up step, wall s per step, CPU s per step, steps) over at least ``seconds``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    del torch
    return counter.get_total_flops() / 1e9, (time.perf_counter() - t0) / n, (time.process_time() - c0) / n, n


def worker_audiogen(binds: list[str], seconds: float) -> dict:
    import torch

    from audiogen import config
    from audiogen.pipeline import build_pipeline

    config.parse(["pipelines/cwvae_l2_speech.gin"], binds)
    torch.manual_seed(0)
    pipe = build_pipeline()
    opt = torch.optim.Adam(pipe.parameters(), 1e-3)
    x = torch.rand(BATCH, 1, SAMPLES) * 0.2 - 0.1
    m = torch.ones(BATCH, SAMPLES, dtype=torch.bool)

    def step():
        opt.zero_grad()
        pipe.training_loss(x, m, 0)["loss"].backward()
        torch.nn.utils.clip_grad_value_(pipe.parameters(), 1000.0)
        torch.nn.utils.clip_grad_norm_(pipe.parameters(), 3000.0)
        opt.step()

    rate = matmul_gflops()
    gflop, wall, cpu, n = _timed(step, seconds)
    return {"parameters": sum(p.numel() for p in pipe.parameters()), "gflop_per_step": gflop, "s_per_step": wall,
            "cpu_s_per_step": cpu, "steps": n, "matmul_gflops": rate}


def worker_reference(src: str, seconds: float) -> dict:
    """The paper code's own model and training step (imports nothing from audiogen)."""
    import types

    sys.path.insert(0, src)
    os.environ.setdefault("BLVM_DATA_ROOT_DIRECTORY", os.environ.get("TMPDIR", "/tmp"))  # else it asks on stdin
    audio = types.ModuleType("torchaudio")  # only blvm's data loaders use it
    audio.transforms = types.ModuleType("torchaudio.transforms")
    audio.transforms.MelSpectrogram = object
    sys.modules.update({"torchaudio": audio, "torchaudio.transforms": audio.transforms})
    import blvm.models
    import torch

    torch.manual_seed(0)
    model = blvm.models.CWVAEAudio(z_size=PAPER["z_size"], h_size=PAPER["h_size"], g_size=0, strides=PAPER["strides"],
                                   num_level_layers=PAPER["num_level_layers"], stride_per_layer=2,
                                   num_mix=PAPER["num_mix"], num_bins=2 ** PAPER["bits"], residual_posterior=False,
                                   precision_posterior=False, likelihood="DMoL")
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    a = torch.rand(BATCH, SAMPLES) * 0.2 - 0.1
    mu = 2 ** PAPER["bits"] - 1
    x = torch.sign(a) * torch.log1p(mu * a.abs()) / torch.log1p(torch.tensor(float(mu)))  # its MuLawEncode
    x_sl = torch.full((BATCH,), SAMPLES, dtype=torch.long)

    def step():  # experiments/experiment_clockwork_audio.py, one batch
        loss, _, _ = model(x, x_sl, beta=1.0, free_nats=0.0, pad_strideable=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 1000.0)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3000.0)
        opt.step()

    rate = matmul_gflops()
    gflop, wall, cpu, n = _timed(step, seconds)
    return {"parameters": sum(p.numel() for p in model.parameters()), "gflop_per_step": gflop, "s_per_step": wall,
            "cpu_s_per_step": cpu, "steps": n, "matmul_gflops": rate}


def primitive_ceiling(seconds: float = 3.0) -> dict:
    """What the dominant primitive reaches on its own: the 3-tap 96-channel convolution at the full sample rate
    (forward and backward, most of the FLOPs at the paper's widths) and the bare GEMM of its im2col shape
    (forward only), each as a fraction of the 1024^3 matmul rate."""
    import torch

    b, c, n = BATCH, 96, SAMPLES
    conv, x = torch.nn.Conv1d(c, c, 3, padding=1), torch.randn(b, c, n, requires_grad=True)
    cols, w = torch.randn(b * n, 3 * c), torch.randn(3 * c, c)
    out = {}
    for name, fn, gflop in (("conv3_fwd_bwd", lambda: conv(x).sum().backward(), 3 * 2 * b * c * c * 3 * n / 1e9),
                            ("im2col_gemm_fwd", lambda: cols @ w, 2 * b * c * c * 3 * n / 1e9)):
        fn()
        k, t0 = 0, time.perf_counter()
        while k < 2 or time.perf_counter() - t0 < seconds / 2:
            fn()
            k += 1
        out[name] = gflop * k / (time.perf_counter() - t0)
    return out


def worker_main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.worker == "reference":
        res = worker_reference(args.reference_src, args.round_seconds)
    else:
        res = worker_audiogen(json.loads(args.worker_binds), args.round_seconds)
        res["primitive_gflops"] = primitive_ceiling()
    res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    res["fraction_of_matmul_rate"] = res["gflop_per_step"] / res["s_per_step"] / res["matmul_gflops"]
    print("RESULT " + json.dumps(res), flush=True)


def spawn(python: str, extra: list[str], args, env: dict) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--threads", str(args.threads),
           "--round-seconds", str(args.round_seconds), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not lines:
        sys.exit(f"worker failed ({' '.join(extra)}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def side_by_side(args, env: dict) -> dict:
    """Every configuration once per round, the order rotated each round, each in a fresh process."""
    names = list(CONFIGS) + (["paper code"] if args.reference_python else [])
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name == "paper code":
                res = spawn(args.reference_python, ["--worker", "reference", "--reference-src",
                                                    str(Path(args.reference_src).resolve())], args, env)
            else:
                res = spawn(sys.executable, ["--worker", "audiogen", "--worker-binds",
                                             json.dumps(CONFIGS[name] + args.bind)], args, env)
            runs[name].append(res)
            print(f"round {r + 1} {name}: {res['s_per_step']:.2f} s/step, {res['fraction_of_matmul_rate']:.1%} "
                  f"of {res['matmul_gflops']:.0f} GFLOP/s, {res['peak_rss_gb']:.2f} GB", flush=True)
    return runs


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def train_and_evaluate(args, env: dict, out: Path) -> dict:
    data = shared_dir(args.shared) / "data" / "librispeech-100-mini"
    exe = str(Path(sys.executable).with_name("audiogen"))
    binds = COMPARABLE + [f"train.threads={args.threads}", f"train.max_minutes={args.minutes}",
                          "train.max_steps=1000000", "train.val_every=200", "train.log_every=10"] + args.bind
    run_dir, ev = out / "run", out / "eval"
    if not args.skip_train:
        cmd = [exe, "train", "--gin", "pipelines/cwvae_l2_speech.gin", str(data / "train.txt"),
               "-o", str(run_dir), "--no-progress"]
        for b in binds:
            cmd += ["--bind", b]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        wall = time.perf_counter() - t0
        peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 2**20
        rows = [r for f in sorted((run_dir / "logs").glob("version_*/metrics.csv")) for r in csv.DictReader(open(f))]
        steps = max(int(r["step"]) for r in rows) + 1
        result = {"train_wall_s": wall, "steps": steps, "s_per_step": wall / steps,
                  "audio_s_per_s": steps * BATCH * SAMPLES / 16000 / wall, "peak_rss_gb": peak}
    else:
        result = {}
    subprocess.run([exe, "evaluate", "--run", str(run_dir), str(data / "test.txt"), "-o", str(ev), "--overwrite", "--no-progress"],
                   check=True, env=env)
    res = json.loads((ev / "evaluation.json").read_text())
    result.update({"test_bits_per_frame": res["bits_per_frame"], "test_kl_bpf": res["kl_bits_per_frame"],
                   "active_units": res["active_units"], "flac_bits_per_sample": res["flac_bits_per_sample"]})
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="side-by-side rounds (0 skips the step comparison)")
    ap.add_argument("--round-seconds", type=float, default=20.0, help="timed steps per worker, at least 2 steps")
    ap.add_argument("--reference-python", help="interpreter of a venv where the paper code's model imports")
    ap.add_argument("--reference-src", default="/tmp/blvm", help="benchmarking-lvms source folder (holds blvm/)")
    ap.add_argument("--minutes", type=float, default=20.0, help="training run through the CLI (0 skips it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shared", help="folder holding data/ (default: AUDIOGEN_SHARED or ../shared)")
    ap.add_argument("--out", type=Path, default=Path("bench-cwvae"))
    ap.add_argument("--bind", action="append", default=[], help="extra gin bindings for audiogen's rows")
    ap.add_argument("--skip-train", action="store_true", help="reuse OUT/run and only evaluate")
    ap.add_argument("--worker", choices=["audiogen", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--worker-binds", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    result: dict = {"threads": args.threads, "load_average_at_start": load, "rounds": args.rounds}
    runs = side_by_side(args, env) if args.rounds else {}
    result["side_by_side"] = runs
    if args.minutes > 0 or args.skip_train:
        result["training"] = train_and_evaluate(args, env, out)
    if runs:
        ref = runs.get("paper code")
        print(f"\nStep side by side: {args.rounds} round(s), {args.threads} thread(s), load {load:.2f} at start "
              f"(medians over rounds; ratio = paper code s/step / this row's, per round)\n")
        print("| configuration | parameters | s per step | GFLOP per step | of matmul rate | peak RSS GB | "
              "paper code s/step / this |\n|---|---|---|---|---|---|---|")
        for name, rs in runs.items():
            ratio = ("" if ref is None or name == "paper code" else
                     " - ".join(f"{x:.2f}x" for x in sorted(q["s_per_step"] / p["s_per_step"] for p, q in zip(rs, ref))))
            print(f"| {name} | {rs[0]['parameters'] / 1e6:.2f} M | {median([r['s_per_step'] for r in rs]):.2f} | "
                  f"{rs[0]['gflop_per_step']:.1f} | {median([r['fraction_of_matmul_rate'] for r in rs]):.1%} | "
                  f"{max(r['peak_rss_gb'] for r in rs):.2f} | {ratio} |")
        ceil = [r["primitive_gflops"] for rs in runs.values() for r in rs if "primitive_gflops" in r]
        if ceil:
            rate = median([r["matmul_gflops"] for rs in runs.values() for r in rs])
            conv = median([c["conv3_fwd_bwd"] for c in ceil]) / rate
            gemm = median([c["im2col_gemm_fwd"] for c in ceil]) / rate
            print(f"\nCeiling of the primitives at 96 channels (same workers): the 3-tap convolution at the full "
                  f"sample rate, forward and backward, {conv:.0%} of the matmul rate; the bare GEMM of its im2col "
                  f"shape, forward only, {gemm:.0%}.")
            result["primitive_fraction"] = {"conv3_fwd_bwd": conv, "im2col_gemm_fwd": gemm}
    if "training" in result:
        t = result["training"]
        print(f"\nTraining {args.minutes:g} min through the CLI: {t.get('steps')} steps, "
              f"{t.get('audio_s_per_s', float('nan')):.2f} audio s/s, peak RSS {t.get('peak_rss_gb', float('nan')):.2f} "
              f"GB; test {t['test_bits_per_frame']:.3f} bits/frame (KL {t['test_kl_bpf']:.3f}), FLAC -8 "
              f"{t['flac_bits_per_sample']}; recorded paper code: {RECORDED['test_bpf_15min']} after 15 min")
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out / 'result.json'}")
    if not runs:
        return
    wide = median([r["fraction_of_matmul_rate"] for r in runs["audiogen channels 96"]])
    met = wide >= TARGET
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "CW-VAE L=2 training step at the paper's widths, FLOPs / s over the matmul rate",
        "value": round(100 * wide, 1), "unit": "%", "target": f">= {TARGET:.0%}", "met": met,
        "conditions": f"{args.threads} thread(s), {args.rounds} round(s) of {args.round_seconds:g} s, batch 4 x 2 s"}))
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
