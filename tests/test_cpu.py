"""CPU defaults for a shared machine (figures: scripts/benchmark_threads.py): chosen once, before torch loads, and
never over what the user set."""

from __future__ import annotations

import os
import subprocess
import sys

from audiogen.cpu import SPIN_COUNT, apply_cpu_defaults, free_cores


def test_defaults_fill_only_what_the_user_left_unset():
    env: dict = {}
    chosen = apply_cpu_defaults(env)
    assert env == chosen and env["GOMP_SPINCOUNT"] == SPIN_COUNT
    # set only when some cores are busy (an idle machine keeps torch's and Lightning's per-process defaults)
    assert 1 <= int(env.get("OMP_NUM_THREADS", 1)) < max(2, len(os.sched_getaffinity(0)))
    mine = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    assert apply_cpu_defaults(mine) == {} and mine == {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}


def test_free_cores_counts_a_busy_core():
    """A process spinning on one core leaves one fewer free core (measured over the window, not a lagging average)."""
    cores = len(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = free_cores(window=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert 1 <= busy <= max(1, cores - 1)


def test_the_console_script_takes_the_defaults_before_torch_loads():
    code = ("import os, sys; from audiogen.cli import main; import audiogen.cpu as c; "
            "assert 'torch' not in sys.modules; c.apply_cpu_defaults(); import torch; "
            "print(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS', len(os.sched_getaffinity(0))))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    threads, env_threads = out.split()
    assert threads == env_threads
