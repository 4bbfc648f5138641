#!/usr/bin/env python
"""The two-stage path on a CUDA machine, checked against the CPU in the same run (no GPU in CI; run it when one is lent).

1. ``audiogen quickstart`` (``train.accelerator='auto'`` takes the GPU): the autoencoder trains on CUDA, its
   checkpoint loads on the CPU (``weights_only=True``) and the summary's figures are reported;
2. ``audiogen encode`` of the same corpus with ``encode.accelerator`` 'cpu' and 'gpu': the two records are the same
   hand-off (rate, hop, latent size, autoencoder) and the latents agree to float tolerance;
3. ``audiogen train-prior`` (DiffWave) on the GPU latents, with TensorBoard listening on;
4. ``sample``, ``evaluate --run PRIOR LATENTS`` and ``export`` of that prior, and the exported file streamed on
   the CPU with torch alone.

Prints one line per check and a HEADLINE; exits 1 if any check fails.

    python scripts/gpu_check.py [--work DIR] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def cli(*args, work: Path) -> str:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "audiogen", *map(str, args)], capture_output=True, text=True,
                          cwd=work)
    took = time.perf_counter() - t0
    print(f"  audiogen {' '.join(map(str, args[:2]))} ... exit {proc.returncode} in {took:.1f} s", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"audiogen {' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def latents(folder: Path) -> tuple[dict, np.ndarray]:
    from audiogen.latents.dataset import LatentDataset

    ds = LatentDataset(folder)
    return ds.meta, np.concatenate([np.asarray(ds.sequence(i)) for i in range(len(ds.files))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="where runs go (default: a temporary folder)")
    ap.add_argument("--steps", type=int, default=300, help="autoencoder training steps")
    ap.add_argument("--cpu", action="store_true", help="a dry run of this script on the CPU (no GPU check is made)")
    args = ap.parse_args()
    gpu = "cpu" if args.cpu else "gpu"
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (--cpu for a dry run)")
        return 1
    device = "CPU dry run" if args.cpu else torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__}, {device}", flush=True)
    work = (args.work or Path(tempfile.mkdtemp(prefix="audiogen-gpu-"))).resolve()
    if work.exists() and any(work.iterdir()):
        print(f"{work} is not empty: pass a new --work folder")
        return 2
    work.mkdir(parents=True, exist_ok=True)
    checks: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append((name, bool(ok), detail))
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)

    q = work / "quick"
    cli("quickstart", "-o", q, "--max-steps", args.steps, "--no-progress",
              *(["--bind", "train.accelerator='cpu'"] if args.cpu else []), work=work)
    from audiogen.artifacts import load_checkpoint

    ck = load_checkpoint(q / "run" / "model.ckpt")
    trained_on = ck["audiogen"].get("trained_on") or {}
    check(f"autoencoder trained on the {gpu.upper()}", trained_on.get("device") == ("cpu" if args.cpu else "cuda"),
          f"the checkpoint records {trained_on}")
    check("GPU checkpoint loads on the CPU", all(v.device.type == "cpu" for v in ck["state_dict"].values()),
          f"{len(ck['state_dict'])} tensors")
    summary = json.loads((q / "summary.json").read_text())
    check("quickstart summary", True, json.dumps({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}))

    corpus = q / "corpus"
    for acc in ("cpu", "gpu"):
        cli("encode", "--run", q / "run", corpus, "-o", work / f"lat_{acc}", "--bind",
            f"encode.accelerator='{'cpu' if args.cpu else acc}'", "--no-progress", work=work)
    (m_cpu, z_cpu), (m_gpu, z_gpu) = latents(work / "lat_cpu"), latents(work / "lat_gpu")
    same = {k: (m_cpu[k], m_gpu[k]) for k in ("sample_rate", "hop", "latent_size", "checkpoint", "encoder")
            if m_cpu.get(k) != m_gpu.get(k)}
    check("CPU and GPU encodes hand off the same record", not same, f"differences: {same}" if same else "equal")
    err = float(np.abs(z_cpu - z_gpu).max() / max(np.abs(z_cpu).max(), 1e-12))
    check("CPU and GPU latents agree", z_cpu.shape == z_gpu.shape and err < 1e-3,
          f"shape {z_cpu.shape}, max |diff| / max |z| = {err:.2e}")

    prior = work / "prior"
    cli("train-prior", "--gin", "pipelines/diffwave_latents.gin", work / "lat_gpu", "-o", prior,
        "--bind", "train.max_steps=200", "--bind", "train.val_every=100", "--no-progress",
        *(["--bind", "train.accelerator='cpu'"] if args.cpu else []), work=work)
    events = list(prior.rglob("events*"))
    check("train-prior on the GPU wrote TensorBoard events", bool(events), f"{len(events)} event file(s)")
    cli("sample", "--run", prior, "-n", 2, "--seconds", 1, "-o", work / "samples", "--no-progress", work=work)
    rec = json.loads((work / "samples" / "samples.json").read_text())
    check("samples decoded", len(list((work / "samples").glob("*.wav"))) == 2,
          json.dumps(rec.get("diagnostics", {}).get("audio", {}))[:200])
    cli("evaluate", "--run", prior, work / "lat_cpu", "-o", work / "eval", work=work)
    check("evaluate --run PRIOR LATENTS", any((work / "eval").glob("*.json")), "")
    cli("export", "--run", prior, "-o", work / "prior.ts", work=work)
    m = torch.jit.load(str(work / "prior.ts"), map_location="cpu")
    c = int(m.prior_params[0])
    y = m.prior(torch.zeros(1, c, 4))
    check("exported prior streams on the CPU", tuple(y.shape) == (1, c, 4) and bool(torch.isfinite(y).all()),
          f"methods {list(m.get_methods())}")

    failed = [n for n, ok, _ in checks if not ok]
    print(f"\n{len(checks) - len(failed)} passed, {len(failed)} failed")
    print("HEADLINE " + json.dumps({"figure": "GPU path checks passed", "value": len(checks) - len(failed),
                                    "unit": f"of {len(checks)}", "conditions": f"{device}, "
                                    f"torch {torch.__version__}", "target": "all", "met": not failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
