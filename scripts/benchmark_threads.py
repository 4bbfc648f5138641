#!/usr/bin/env python
"""How training speed degrades when other jobs share the CPU, per thread count and OpenMP wait policy.

Each measurement is a fresh child process (the OpenMP wait policy is read once, when torch loads) that trains the
quickstart's autoencoder (``pipelines/conv_ae.gin`` with the quickstart's bindings: its batch of 0.5 s crops) for
``--seconds`` of wall clock and reports steps per second. Competing load: ``--loads`` busy processes (pure Python
spin loops, one core each) started before the child and stopped after it. Configurations alternate within each
load level, so drift on a shared machine hurts them alike.

A configuration degrades gracefully when its speed with k busy processes is at least the best idle speed divided by
(1 + k): the job slows in proportion to the load. OpenMP threads that spin at barriers while the cores are taken
fall far below it.

    python scripts/benchmark_threads.py [--seconds 20] [--loads 0,1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

CONFIGS = [("default", 2), ("spin10000", 2), ("default", 1), ("follow", 2), ("auto", 0)]
# (policy, torch threads): default leaves OMP_WAIT_POLICY unset; follow starts with the threads given, as if the load
# had come after it started, and follows it (audiogen.cpu.ThreadGovernor); auto is what `audiogen train` does:
# threads chosen at start (audiogen.cpu.apply_cpu_defaults), then followed


def child(seconds: float, threads: int, follow: bool) -> dict:
    import torch

    from audiogen import config
    from audiogen.cpu import ThreadGovernor
    from audiogen.pipeline import build_pipeline
    from audiogen.workflows.quickstart import QUICK_BINDINGS

    torch.set_num_threads(threads)
    config.parse(["pipelines/conv_ae.gin"], [b.replace(" ", "") for b in QUICK_BINDINGS])
    torch.manual_seed(0)
    pipe = build_pipeline().train()
    opt = torch.optim.Adam(pipe.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    batch = next(int(b.split("=")[1]) for b in QUICK_BINDINGS if b.startswith("train.batch_size"))
    x = (torch.rand(batch, 1, 8000, generator=g) * 2 - 1) * 0.3  # the quickstart's batch of 0.5 s crops
    mask = torch.ones(batch, 8000, dtype=torch.bool)

    def step():
        opt.zero_grad(set_to_none=True)
        pipe.training_loss(x, mask, 0)["loss"].backward()
        opt.step()

    step()  # warm-up: allocator, oneDNN primitives
    governor = ThreadGovernor() if follow else None  # what `audiogen train` runs between steps (FollowTheLoad)
    used = {torch.get_num_threads()}
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
        n = governor.follow() if governor else None
        if n:
            used.add(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"steps": steps, "steps_per_s": steps / wall, "cpu_per_step": cpu / steps, "threads_used": sorted(used)}


def follow_policy(policy: str) -> bool:
    return policy in ("follow", "auto")


def _spin() -> None:
    while True:
        pass


def measure(policy: str, threads: int, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_NUM_THREADS"] = str(threads)
    follow = policy == "follow"
    if policy == "auto":  # what `audiogen train` does at start (audiogen.cpu), threads chosen from the load
        from audiogen import cpu

        env.pop("OMP_NUM_THREADS")
        threads = int(cpu.apply_cpu_defaults(env, command="train").get("OMP_NUM_THREADS", cpu.usable_cores()))
        follow = cpu.adaptive
    elif policy.startswith("spin"):  # GNU OpenMP (torch's CPU wheels): spin this many times, then sleep
        env["GOMP_SPINCOUNT"] = policy[4:]
    elif policy not in ("default", "follow"):
        env["OMP_WAIT_POLICY"] = policy.upper()
    out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--seconds", str(seconds)]
                         + (["--follow"] if follow else []),
                         capture_output=True, text=True, env=env, check=True).stdout
    return {"chosen_threads": threads, **json.loads(out.strip().splitlines()[-1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="training time per measurement")
    ap.add_argument("--loads", default="0,1,2", help="numbers of competing busy processes")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--configs", help="POLICY:THREADS,... (policy default, passive, active, follow or spinN for "
                                      "GOMP_SPINCOUNT=N; default: " + ",".join(f"{p}:{t}" for p, t in CONFIGS) + ")")
    ap.add_argument("--quick", action="store_true", help="3 s per measurement, loads 0 and 2 (a run-through)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--follow", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.seconds, args.child, args.follow)))
        return 0
    if args.quick:
        args.seconds, args.loads = 3.0, "0,2"
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")] if args.configs else CONFIGS
    loads = [int(k) for k in args.loads.split(",")]
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f} before; {args.seconds:g} s per measurement",
          flush=True)
    rows = []
    for k in loads:
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(k)]
        for p in spinners:
            p.start()
        try:
            order = configs if k % 2 == 0 else configs[::-1]
            for policy, threads in order:
                r = measure(policy, threads, args.seconds)
                rows.append({"load": k, "policy": policy, "threads": threads, **r})
                print(f"  load {k}: {policy:<9} threads {r['chosen_threads']} (used {r['threads_used']}): "
                      f"{r['steps_per_s']:.2f} steps/s, {r['cpu_per_step']:.3f} CPU s/step", flush=True)
        finally:
            for p in spinners:
                p.terminate()
    best_idle = max(r["steps_per_s"] for r in rows if r["load"] == 0)
    print(f"\nsteps/s, and in brackets the ratio to a proportional slowdown: the best idle speed ({best_idle:.2f}) "
          f"divided by (1 + busy processes); >= 1 degrades no worse than the load\n")
    print("| policy | threads | " + " | ".join(f"{k} busy" for k in loads) + " |\n|---|---|" + "---|" * len(loads))
    worst = {}
    for policy, threads in configs:
        cells = []
        for k in loads:
            r = next(r for r in rows if r["load"] == k and (r["policy"], r["threads"]) == (policy, threads))
            ratio = r["steps_per_s"] / (best_idle / (1 + k))
            worst[(policy, threads)] = min(worst.get((policy, threads), float("inf")), ratio)
            used = "-".join(map(str, r["threads_used"]))
            cells.append(f"{r['steps_per_s']:.2f} ({ratio:.2f})" + (f", {used} thr" if not threads or follow_policy(policy)
                                                                      else ""))
        print(f"| {policy} | {threads or 'chosen'} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cores": cores, "seconds": args.seconds, "rows": rows}, f, indent=1)
    key = ("auto", 0) if ("auto", 0) in worst else max(worst, key=worst.get)
    print("HEADLINE " + json.dumps({
        "figure": f"training speed under load / proportional slowdown, worst load ({key[0]} threads)",
        "value": round(worst[key], 3), "unit": "x", "target": ">= 0.8", "met": bool(worst[key] >= 0.8),
        "conditions": f"{cores} cores, {args.loads} busy processes, {args.seconds:g} s each; torch default "
                      f"(2 threads) {worst.get(('default', 2), float('nan')):.2f}"}))
    return 0 if worst[key] >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
