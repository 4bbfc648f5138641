#!/usr/bin/env python
"""Every benchmark in scripts/ in a short headline mode, and one table of their headline figures.

Convention for a benchmark script (``scripts/benchmark_*.py``):

- its **last line of stdout** is ``HEADLINE {json}`` with keys ``figure`` (what is measured), ``value`` (a number),
  ``unit`` and ``conditions`` (threads, sizes, minutes: what the number depends on), e.g.
  ``HEADLINE {"figure": "encode throughput", "value": 812.5, "unit": "audio s/s", "conditions": "20 files"}``;
  a figure with a target adds ``target`` (text, e.g. ">= 80% of the forward floor") and ``met`` (true/false);
- it has a headline mode that finishes in a minute or two: either ``--quick`` (a script not listed in ``QUICK``
  below is run with ``--quick``) or options listed in ``QUICK``; ``{out}`` there stands for a fresh folder this
  script gives it, ``{shared}`` for the shared data folder;
- it exits non-zero when it fails or misses a target (a HEADLINE printed before is still reported; a missed target
  shows as ``target missed`` in the table, never as ok).

A new script plugs in by following the convention; add it to ``QUICK`` only if ``--quick`` is not its flag.
Each script runs in its own process, one after the other, with its output saved to ``OUT/<script>.log``.

    python scripts/benchmark_all.py [--only perf,encode] [--skip bridge] [--timeout 600] [--out bench-all]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_cwvae import shared_dir  # scripts/ is on sys.path when a script runs

SCRIPTS = Path(__file__).resolve().parent
# script stem: its headline-mode arguments (scripts missing here get --quick)
QUICK: dict[str, list[str]] = {
    "benchmark_encode": ["--quick", "--threads", "1", "--shared", "{shared}"],
    "benchmark_cwvae": ["--rounds", "1", "--round-seconds", "3", "--minutes", "0.5", "--threads", "1", "--shared", "{shared}", "--out", "{out}"],
    "benchmark_likelihood": ["--minutes", "0.3", "--models", "VRNN", "--threads", "1", "--shared", "{shared}",
                             "--out", "{out}"],
    "benchmark_diffwave": ["--seconds", "3", "--rounds", "1", "--threads", "1", "--skip-sampling"],
    "benchmark_rave": ["-n", "3", "--rounds", "2", "--threads", "1"],
    "benchmark_bridge": ["--minutes", "0.3", "--clips", "2", "--seconds", "1", "--threads", "1",
                         "--shared", "{shared}", "--out", "{out}"],
    "benchmark_perf": ["--quick", "--shared", "{shared}"],
    "benchmark_probe": ["--minutes", "0.3", "--split", "test", "--shared", "{shared}", "--work", "{out}"],
}


def headline(stdout: str) -> dict | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("HEADLINE "):
            try:
                return json.loads(line[len("HEADLINE "):])
            except json.JSONDecodeError:
                return None
    return None


def run(script: Path, out: Path, shared: Path, timeout: float) -> dict:
    name = script.stem
    work = out / name
    work.mkdir(parents=True, exist_ok=True)
    args = [a.replace("{out}", str(work)).replace("{shared}", str(shared)) for a in QUICK.get(name, ["--quick"])]
    env = {**os.environ, "AUDIOGEN_SHARED": str(shared)}
    t0 = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                             timeout=timeout, cwd=work)
        stdout, stderr, status = res.stdout, res.stderr, "ok" if res.returncode == 0 else f"exit {res.returncode}"
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        status = f"timeout {timeout:g} s"
    wall = time.perf_counter() - t0
    (out / f"{name}.log").write_text(f"$ {script.name} {' '.join(args)}\n{stdout}\n--- stderr ---\n{stderr}")
    head = headline(stdout)
    if head is None and status == "ok":
        status = "no HEADLINE line"
    elif head is not None and head.get("met") is False and not status.startswith("timeout"):
        status = "target missed"  # whatever the exit code: a missed target is never reported as ok
    return {"benchmark": name.removeprefix("benchmark_"), "args": args, "status": status, "wall_s": wall,
            **(head or {})}


def table(rows: list[dict]) -> str:
    lines = ["| benchmark | headline figure | value | unit | target | conditions | status | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731 - a '|' inside a cell would end it
    for r in rows:
        value = r.get("value")
        value = "" if value is None else (f"{value:,.4g}" if isinstance(value, (int, float)) else str(value))
        lines.append(f"| {r['benchmark']} | {cell(r.get('figure', ''))} | {value} | {cell(r.get('unit', ''))} | "
                     f"{cell(r.get('target', ''))} | {cell(r.get('conditions', ''))} | {r['status']} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated benchmarks (names without benchmark_), default: all")
    ap.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per benchmark")
    ap.add_argument("--shared", help="folder holding data/ and models/ (default: AUDIOGEN_SHARED or ../shared)")
    ap.add_argument("--out", type=Path, help="logs and each benchmark's files (default: a temporary folder)")
    args = ap.parse_args()
    scripts = sorted(p for p in SCRIPTS.glob("benchmark_*.py") if p.name != Path(__file__).name)
    names = {p.stem.removeprefix("benchmark_") for p in scripts}
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else names
    skip = {n.strip() for n in args.skip.split(",") if n.strip()}
    unknown = (only | skip) - names
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; scripts/ has {', '.join(sorted(names))}")
    chosen = [p for p in scripts if p.stem.removeprefix("benchmark_") in only - skip]
    shared = shared_dir(args.shared)
    with tempfile.TemporaryDirectory(prefix="audiogen-bench-") as tmp:
        out = (args.out or Path(tmp)).resolve()
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for script in chosen:
            print(f"running {script.name} ...", file=sys.stderr, flush=True)
            rows.append(run(script, out, shared, args.timeout))
            print(f"  {rows[-1]['status']} in {rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
        md = table(rows)
        (out / "headlines.md").write_text(md + "\n")
        (out / "headlines.json").write_text(json.dumps(rows, indent=1))
    print(md)
    if args.out:
        print(f"\nlogs and results in {out}")
    if any(r["status"] != "ok" for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
