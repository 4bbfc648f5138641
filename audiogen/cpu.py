"""CPU defaults that degrade gracefully on a shared machine (measured by ``scripts/benchmark_threads.py``).

OpenMP threads that find their cores taken by other jobs spin at every barrier: on 2 cores, training with torch's
default (2 threads, GNU OpenMP's spin count of 300,000) ran 4-25x slower than idle under one or two competing
processes, against the 1.5-2x a fair share would cost. So each ``audiogen`` command starts, before torch loads, with

- when some cores are busy as it starts (measured over 0.2 s), as many threads as cores that are idle (at least 1);
  on an idle machine torch's and Lightning's own defaults (one thread per core, divided among the processes of a
  distributed run);
- a spin count of 10,000, so waiting threads soon sleep and give the core back (idle speed is unchanged).

A user's ``OMP_NUM_THREADS``, ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins, and so does ``train.threads``.
"""

from __future__ import annotations

import os
import time

SPIN_COUNT = "10000"


def free_cores(window: float = 0.2) -> int:
    """Cores this process may use that were idle over ``window`` seconds just now (at least 1). Linux's /proc/stat
    (all CPUs); elsewhere the 1-minute load average, which lags a job that has just started."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = os.cpu_count() or usable
    try:
        idle0, total0 = _cpu_times()
        time.sleep(window)
        idle1, total1 = _cpu_times()
        busy = cores * (1 - (idle1 - idle0) / max(total1 - total0, 1))
    except (OSError, ValueError, IndexError):
        try:
            busy = os.getloadavg()[0]
        except OSError:  # neither: assume idle
            busy = 0.0
    return max(1, min(usable, round(cores - busy)))


def _cpu_times() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # guest time is already counted in user


def apply_cpu_defaults(env: dict | None = None) -> dict:
    """Set the defaults in ``env`` (os.environ) unless already set; returns what was set. Call before torch loads:
    OpenMP reads these once."""
    env = os.environ if env is None else env
    chosen = {}
    if "OMP_NUM_THREADS" not in env:
        # Only when cores are busy: left unset on an idle machine, torch takes one thread per core and Lightning
        # divides the cores among the processes of a distributed run (it does so only when this is unset).
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        free = free_cores()
        if free < usable:
            chosen["OMP_NUM_THREADS"] = str(free)
    if "GOMP_SPINCOUNT" not in env and "OMP_WAIT_POLICY" not in env:
        chosen["GOMP_SPINCOUNT"] = SPIN_COUNT
    env.update(chosen)
    return chosen
