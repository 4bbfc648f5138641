"""Benchmark priors.diffwave on CPU: training steps per second (next to lmnt-com/diffwave's own model class on the
same input shapes) and sampling wall-clock per second of output.

    python scripts/benchmark_diffwave.py --reference-python /tmp/venv-dw/bin/python

The reference runs in its own interpreter (a venv with the PyPI package ``diffwave``, never an audiogen
dependency): this same file is started there with ``--worker reference`` and imports nothing from audiogen.
Setting that venv up (its requirements pull torchaudio, which is not needed to import the model):

    python3.11 -m venv /tmp/venv-dw && /tmp/venv-dw/bin/pip install torch==2.13.0 numpy
    /tmp/venv-dw/bin/pip install --no-deps diffwave

Both sides run the same training step: a random step per sequence, noise at DiffWave's linear 1e-4 -> 0.05,
50-step schedule, L1 loss on the noise, backward, Adam (lr 2e-4). The PyPI release (0.1.7) has no unconditional
mode (upstream's later ``params.unconditional`` removes the spectrogram upsampler and the per-block conditioner
projections); here its spectrogram path is stubbed out instead: the upsampler returns nothing and each block's
conditioner projection returns a zero scalar, so their forward runs unchanged apart from one extra add per block.
For C latent channels without flattening, their 1-channel input/output projections are replaced by C-channel
ones (as the lab diary did: "changed waveform_in input channels").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

SCHEDULE = {"beta_start": 1e-4, "beta_end": 0.05, "steps": 50}
BASE = {"residual_layers": 30, "residual_channels": 64, "dilation_cycle": 10}


def _time_steps(step, seconds: float, warmup: int = 3, min_steps: int = 5) -> dict:
    for _ in range(warmup):
        step()
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while n < min_steps or time.perf_counter() - start < seconds:
        step()
        n += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU seconds of this process (all its threads) as well as wall seconds: on a machine shared with other jobs,
    # time spent waiting for a core shows in the wall figure only
    return {"steps": n, "seconds": elapsed, "cpu_seconds": cpu, "steps_per_s": n / elapsed,
            "steps_per_cpu_s": n / cpu}


def _inputs(batch: int, channels: int, frames: int, flatten: bool):
    torch.manual_seed(0)
    x = torch.randn(batch, channels, frames)
    return x.transpose(1, 2).reshape(batch, 1, channels * frames) if flatten else x


# ---- ours


def ours_training(batch, channels, frames, flatten, seconds) -> dict:
    from audiogen.priors.diffwave import DiffWavePrior
    from audiogen.schedules import LinearSchedule

    torch.manual_seed(0)
    prior = DiffWavePrior(latent_size=channels, schedule=LinearSchedule(**SCHEDULE), flatten=flatten, **BASE)
    opt = torch.optim.Adam(prior.parameters(), lr=2e-4)
    x = torch.randn(batch, channels, frames)

    def step():
        opt.zero_grad(set_to_none=True)
        prior.training_loss(x)["loss"].backward()
        opt.step()

    return _time_steps(step, seconds)


def ours_sampling(channels, frames, flatten, frame_rate, n) -> dict:
    from audiogen.priors.diffwave import DiffWavePrior
    from audiogen.schedules import LinearSchedule

    torch.manual_seed(0)
    prior = DiffWavePrior(latent_size=channels, schedule=LinearSchedule(**SCHEDULE), flatten=flatten, **BASE)
    out = {}
    audio_seconds = n * frames / frame_rate
    for sampler in ("ancestral", "fast", "ddim"):
        prior.sample(n, frames, sampler=sampler)  # warm-up
        start = time.perf_counter()
        prior.sample(n, frames, sampler=sampler)
        wall = time.perf_counter() - start
        evals = {"ancestral": prior.num_steps, "fast": len(prior.fast_betas),
                 "ddim": min(prior.sample_steps, prior.num_steps)}[sampler]
        out[sampler] = {"network_evals": evals, "wall_s": wall, "wall_s_per_output_s": wall / audio_seconds}
    return out


# ---- lmnt-com/diffwave (runs in the reference interpreter)


def reference_training(batch, channels, frames, flatten, seconds) -> dict:
    import diffwave
    import numpy as np
    from diffwave.model import DiffWave
    from diffwave.params import AttrDict, params
    from torch import nn

    class NoSpectrogram(nn.Module):
        def forward(self, spectrogram):
            return None

    class ZeroConditioner(nn.Module):
        def forward(self, conditioner):
            return torch.zeros(())

    class ChannelsIn(nn.Module):
        """Their forward adds a channel axis to (B, T) audio; latents arrive as (B, C, L) already."""

        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv = nn.Conv1d(c_in, c_out, 1)
            nn.init.kaiming_normal_(self.conv.weight)

        def forward(self, x):
            return self.conv(x.squeeze(1))

    torch.manual_seed(0)
    schedule = np.linspace(SCHEDULE["beta_start"], SCHEDULE["beta_end"], SCHEDULE["steps"]).tolist()
    p = AttrDict(params).override({"residual_layers": BASE["residual_layers"],
                                   "residual_channels": BASE["residual_channels"],
                                   "dilation_cycle_length": BASE["dilation_cycle"], "noise_schedule": schedule})
    native_uncond = "unconditional" in params
    if native_uncond:
        p.override({"unconditional": True})
    model = DiffWave(p)
    if not native_uncond:
        model.spectrogram_upsampler = NoSpectrogram()
        for layer in model.residual_layers:
            layer.conditioner_projection = ZeroConditioner()
    c_in = 1 if flatten else channels
    if c_in != 1:
        model.input_projection = ChannelsIn(c_in, BASE["residual_channels"])
        model.output_projection = nn.Conv1d(BASE["residual_channels"], c_in, 1)
        nn.init.zeros_(model.output_projection.weight)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    noise_level = torch.tensor(np.cumprod(1 - np.array(schedule)), dtype=torch.float32)
    x = _inputs(batch, channels, frames, flatten)
    audio = x[:, 0] if flatten else x  # their (B, T) for one channel
    loss_fn = nn.L1Loss()

    def step():
        opt.zero_grad(set_to_none=True)
        t = torch.randint(0, len(schedule), [batch])
        scale = noise_level[t].view(-1, *[1] * (audio.ndim - 1))
        noise = torch.randn_like(audio)
        noisy = scale.sqrt() * audio + (1 - scale).sqrt() * noise
        predicted = model(noisy, None, t)
        loss_fn(noise, predicted.squeeze(1)).backward()
        opt.step()

    res = _time_steps(step, seconds)
    res["diffwave_version"] = getattr(diffwave, "__version__", None) or _dist_version("diffwave")
    res["unconditional"] = "params.unconditional" if native_uncond else "spectrogram path stubbed"
    return res


def _dist_version(name: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# ---- driver


def _run_reference(args, flatten: bool) -> dict:
    cmd = [args.reference_python, os.path.abspath(__file__), "--worker", "reference", "--threads", str(args.threads),
           "--batch", str(args.batch), "--channels", str(args.channels), "--frames", str(args.frames),
           "--seconds", str(args.seconds)] + (["--flatten"] if flatten else [])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of ours in their interpreter
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd="/")
    if done.returncode != 0:
        sys.exit(f"reference run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-python", help="interpreter with the PyPI package diffwave installed")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count())
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=15.0, help="timed seconds per training measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours and theirs")
    ap.add_argument("--frame-rate", type=float, default=16000 / 512,
                    help="latent frames per audio second (RAVE v2small at 16 kHz: hop 512)")
    ap.add_argument("--sample-n", type=int, default=4, help="sequences per sampling call")
    ap.add_argument("--skip-sampling", action="store_true")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--worker", choices=["reference"], help=argparse.SUPPRESS)
    ap.add_argument("--flatten", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shape = (args.batch, args.channels, args.frames)

    if args.worker == "reference":
        print(json.dumps(reference_training(*shape, args.flatten, args.seconds)))
        return

    results = {"threads": args.threads, "torch": torch.__version__, "batch": args.batch, "rounds": args.rounds,
               "channels": args.channels, "frames": args.frames, "config": {**BASE, **SCHEDULE}, "training": {}}
    for flatten in (False, True):
        name = f"flatten (1 x {args.channels * args.frames})" if flatten else \
            f"latent ({args.channels} x {args.frames})"
        # ours and theirs alternate, round by round, so that load from other processes hits both alike; the best
        # round of each is compared (the least disturbed)
        rounds = []
        for _ in range(args.rounds):
            r = {"ours": ours_training(*shape, flatten, args.seconds)}
            if args.reference_python:
                r["reference"] = _run_reference(args, flatten)
            rounds.append(r)
        row = {"rounds": rounds}
        for key in ("steps_per_s", "steps_per_cpu_s"):
            row[f"ours_{key}"] = max(r["ours"][key] for r in rounds)
            if args.reference_python:
                row[f"reference_{key}"] = max(r["reference"][key] for r in rounds)
                row[f"ratio_{key}"] = row[f"ours_{key}"] / row[f"reference_{key}"]
        line = f"training, {name}, batch {args.batch}, best of {args.rounds} rounds of {args.seconds:g} s: "
        if args.reference_python:
            row["reference_version"] = rounds[0]["reference"]["diffwave_version"]
            row["reference_unconditional"] = rounds[0]["reference"]["unconditional"]
            line += (f"ours {row['ours_steps_per_s']:.2f} steps/s, lmnt-com/diffwave "
                     f"{row['reference_steps_per_s']:.2f} steps/s, ratio {row['ratio_steps_per_s']:.2f}x; "
                     f"per CPU second {row['ours_steps_per_cpu_s']:.2f} vs {row['reference_steps_per_cpu_s']:.2f}, "
                     f"ratio {row['ratio_steps_per_cpu_s']:.2f}x; per round (wall) "
                     + ", ".join(f"{r['ours']['steps_per_s'] / r['reference']['steps_per_s']:.2f}x" for r in rounds))
        else:
            line += f"ours {row['ours_steps_per_s']:.2f} steps/s ({row['ours_steps_per_cpu_s']:.2f} per CPU second)"
        results["training"][name] = row
        print(line, flush=True)

    if not args.skip_sampling:
        results["sampling"] = {}
        for flatten in (False, True):
            name = "flatten" if flatten else "latent"
            res = ours_sampling(args.channels, args.frames, flatten, args.frame_rate, args.sample_n)
            results["sampling"][name] = res
            for sampler, r in res.items():
                print(f"sampling, {name}, {sampler} ({r['network_evals']} network evals), {args.sample_n} x "
                      f"{args.frames} frames = {args.sample_n * args.frames / args.frame_rate:.2f} s of output: "
                      f"{r['wall_s']:.2f} s wall, {r['wall_s_per_output_s']:.3f} s per output second", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    head = next(iter(results["training"].values()))
    ref = f", {head['ratio_steps_per_s']:.2f}x lmnt-com/diffwave" if args.reference_python else ""
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "DiffWave prior training steps", "value": round(head["ours_steps_per_s"], 3), "unit": "steps/s",
        "conditions": f"batch {args.batch} x {args.channels} x {args.frames} latents, {args.threads} thread(s), "
                      f"best of {args.rounds} x {args.seconds:g} s{ref}"}))


if __name__ == "__main__":
    main()
