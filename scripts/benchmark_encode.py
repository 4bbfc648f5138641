#!/usr/bin/env python
"""Benchmark ``audiogen encode`` against the I/O floor on librispeech-100-mini.

In one run:

1. I/O floor: soundfile alone decodes every file to float32 (audio seconds per wall second);
2. ``audiogen encode`` (the Conv1d encoder of ``pipelines/conv_ae.gin``) on the same files, run as a fresh
   subprocess of the real console script, timed by wall clock; its peak RSS is that child's own ``ru_maxrss``
   (``os.wait4`` on its pid), so earlier children (the checkpoint's ``audiogen train``) do not count;
3. the ratio encode/floor (target >= 50 %) and the peak RSS (target < 1 GB), with PASS/FAIL.

Without ``--ckpt`` a throwaway checkpoint is trained for 2 steps on 2 short files (throughput does not depend on
the weights). The data folder is ``--shared``, else ``$AUDIOGEN_SHARED``, else ``../shared`` beside the project.

    python scripts/benchmark_encode.py [--limit N] [--threads N] [--ckpt RUN] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "data/librispeech-100-mini"
GIN = "pipelines/conv_ae.gin"
TARGET_RATIO = 0.5
TARGET_RSS_BYTES = 1_000_000_000  # 1 GB


def shared_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser().resolve()
    env = os.environ.get("AUDIOGEN_SHARED")
    return Path(env).expanduser().resolve() if env else (ROOT.parent / "shared").resolve()


def corpus_files(corpus: Path, limit: int | None) -> list[Path]:
    """Every file of train/valid/test lists (in that order, deduplicated), else every audio file of the folder."""
    files: dict[Path, None] = {}
    for name in ("train.txt", "valid.txt", "test.txt"):
        lst = corpus / name
        if lst.exists():
            for line in lst.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    files.setdefault((corpus / line).resolve(), None)
    if not files:
        for p in sorted(corpus.rglob("*.flac")):
            files.setdefault(p.resolve(), None)
    out = list(files)
    if not out:
        sys.exit(f"benchmark_encode: no audio files in {corpus}")
    return out[:limit] if limit else out


def console_script() -> str:
    exe = Path(sys.executable).with_name("audiogen")
    if exe.exists():
        return str(exe)
    found = shutil.which("audiogen")
    if not found:
        sys.exit("benchmark_encode: the `audiogen` console script is not installed next to this python")
    return found


def io_floor(files: list[Path]) -> dict:
    """soundfile decode of every file to float32; one untimed pass first so both measurements see a warm cache."""
    for f in files:
        sf.read(str(f), dtype="float32")
    samples = 0.0
    t0 = time.perf_counter()
    for f in files:
        x, sr = sf.read(str(f), dtype="float32")
        samples += len(x) / sr
    wall = time.perf_counter() - t0
    return {"audio_seconds": samples, "wall_seconds": wall, "audio_s_per_s": samples / wall}


def run_child(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd`` as a fresh child; wall time, exit code and that child's own peak RSS (bytes)."""
    with open(log, "wb") as fh:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if p.returncode != 0:
        sys.exit(f"benchmark_encode: command failed ({p.returncode}): {' '.join(cmd)}\n{text[-4000:]}")
    return {"wall_seconds": wall, "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux: KiB
            "user_seconds": usage.ru_utime, "sys_seconds": usage.ru_stime, "output": text}


def child_threads(env: dict) -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


# A conv1d encoder of negligible cost (~400 FLOP per sample): what the encode path itself costs (reading,
# resampling, chunking, sharding, statistics), as opposed to the quickstart encoder's arithmetic.
MINIMAL = ["STRIDES=[64]", "CHANNELS=[4]", "LATENT_SIZE=16"]


def make_checkpoint(exe: str, files: list[Path], tmp: Path, env: dict, binds: list[str] = ()) -> Path:
    shortest = sorted(files, key=lambda f: sf.info(str(f)).frames)[:2]
    run = tmp / "run"
    cmd = [exe, "train", "--gin", GIN, "--bind", "train.max_steps=2", *[a for b in binds for a in ("--bind", b)],
           *map(str, shortest), "-o", str(run), "--no-progress"]
    run_child(cmd, env, tmp / "train.log")
    ckpt = run / "model.ckpt"
    return ckpt if ckpt.exists() else run


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", help="shared folder (default: $AUDIOGEN_SHARED, else ../shared beside the project)")
    ap.add_argument("--limit", type=int, help="only the first N files")
    ap.add_argument("--ckpt", type=Path, help="trained pipeline (run folder or .ckpt); default: train 2 steps")
    ap.add_argument("--threads", type=int, help="OMP/MKL/torch threads of the encode child (default: torch's)")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--keep", type=Path, help="keep the temp folder (checkpoint, latents, logs) here")
    args = ap.parse_args(argv)

    corpus = shared_dir(args.shared) / CORPUS
    if not corpus.is_dir():
        sys.exit(f"benchmark_encode: {corpus} not found (set --shared or AUDIOGEN_SHARED)")
    files = corpus_files(corpus, args.limit)
    exe = console_script()

    env = dict(os.environ)
    if args.threads:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[k] = str(args.threads)
    import torch  # only for the version; thread count is the child's

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="audiogen-bench-"))
    try:
        floor = io_floor(files)
        ckpt = args.ckpt.resolve() if args.ckpt else make_checkpoint(exe, files, tmp, env)
        lst = tmp / "files.txt"
        lst.write_text("".join(f"{f}\n" for f in files))
        enc = run_child([exe, "encode", "--run", str(ckpt), str(lst), "-o", str(tmp / "latents"),
                         "--no-progress"], env, tmp / "encode.log")
        m = re.search(r"encoded (\d+) files \(([\d.]+) s of audio.* in ([\d.]+) s", enc["output"])
        if not m or int(m.group(1)) != len(files):
            sys.exit(f"benchmark_encode: unexpected encode output:\n{enc['output'][-2000:]}")
        (tmp / "minimal").mkdir()
        mini_ckpt = make_checkpoint(exe, files, tmp / "minimal", env, MINIMAL)
        mini = run_child([exe, "encode", "--run", str(mini_ckpt), str(lst), "-o", str(tmp / "minimal" / "latents"),
                          "--no-progress"], env, tmp / "minimal" / "encode.log")
        threads = child_threads(env)
        load_after = os.getloadavg()[0]
    finally:
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)

    audio_s = floor["audio_seconds"]
    enc_rate = audio_s / enc["wall_seconds"]
    ratio = enc_rate / floor["audio_s_per_s"]
    res = {
        "corpus": str(corpus), "num_files": len(files), "audio_seconds": audio_s,
        "ckpt": str(args.ckpt) if args.ckpt else "(2-step throwaway)",
        "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "torch_threads": threads, "threads_option": args.threads,
        "loadavg_1min": [load_before, load_after],  # other work on the machine skews wall-clock figures
        "floor": floor,
        "encode": {"wall_seconds": enc["wall_seconds"], "in_cli_seconds": float(m.group(3)),
                   "audio_s_per_s": enc_rate, "cpu_seconds": enc["user_seconds"] + enc["sys_seconds"],
                   "peak_rss_bytes": enc["peak_rss_bytes"]},
        "ratio_to_floor": ratio, "ratio_pass": ratio >= TARGET_RATIO,
        "rss_pass": enc["peak_rss_bytes"] < TARGET_RSS_BYTES,
        "command": [Path(exe).name, "encode", "--run", "CKPT", "FILES.txt", "-o", "OUT", "--no-progress"],
    }

    ok = lambda b: "PASS" if b else "FAIL"  # noqa: E731
    print(f"\n{len(files)} files, {audio_s:.1f} s ({audio_s / 60:.1f} min) of audio from {corpus}")
    print(f"torch {torch.__version__}, {threads} torch threads, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before / {load_after:.1f} after\n")
    print("| measurement | value | target | status |")
    print("|---|---|---|---|")
    print(f"| I/O floor (soundfile -> float32) | {floor['audio_s_per_s']:,.0f} audio s/s "
          f"({floor['wall_seconds']:.2f} s) | | |")
    print(f"| `audiogen encode` wall clock | {enc_rate:,.1f} audio s/s ({enc['wall_seconds']:.1f} s; "
          f"{res['encode']['in_cli_seconds']:.1f} s inside the CLI; "
          f"{audio_s / res['encode']['cpu_seconds']:,.1f} audio s per CPU s) | | |")
    print(f"| encode / floor | {ratio:.1%} | >= {TARGET_RATIO:.0%} | {ok(res['ratio_pass'])} |")
    print(f"| encode peak RSS | {mb(enc['peak_rss_bytes'])} | < 1 GB | {ok(res['rss_pass'])} |")
    mini_rate = audio_s / mini["wall_seconds"]
    res["minimal_encoder"] = {"bindings": MINIMAL, "wall_seconds": mini["wall_seconds"], "audio_s_per_s": mini_rate,
                              "ratio_to_floor": mini_rate / floor["audio_s_per_s"],
                              "peak_rss_bytes": mini["peak_rss_bytes"]}
    print(f"| same path, minimal conv1d encoder ({' '.join(MINIMAL)}) | {mini_rate:,.0f} audio s/s, "
          f"{mini_rate / floor['audio_s_per_s']:.1%} of the floor, {mb(mini['peak_rss_bytes'])} | "
          f">= {TARGET_RATIO:.0%} | {ok(mini_rate / floor['audio_s_per_s'] >= TARGET_RATIO)} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1))
    print("HEADLINE " + json.dumps({  # the last line, for scripts/benchmark_all.py
        "figure": "audiogen encode throughput", "value": round(enc_rate, 1), "unit": "audio s/s",
        "conditions": f"{len(files)} files, {threads} thread(s), {ratio:.0%} of the I/O floor, "
                      f"peak RSS {mb(enc['peak_rss_bytes'])}",
        "target": f">= {TARGET_RATIO:.0%} of the I/O floor, peak RSS < 1 GB",
        "met": bool(res["ratio_pass"] and res["rss_pass"])}))
    return 0 if res["ratio_pass"] and res["rss_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
