"""CPU defaults that degrade gracefully on a shared machine (measured by ``scripts/benchmark_threads.py``).

OpenMP threads that find their cores taken by other jobs spin at every barrier: on 2 cores, training with torch's
default (2 threads, GNU OpenMP's spin count of 300,000) ran 4-25x slower than idle under one or two competing
processes, against the 1.5-2x a fair share would cost; one thread is not slowed by one competing process at all.
So each ``audiogen`` command starts, before torch loads, with

- when some cores are busy as it starts (measured over 0.2 s), as many threads as cores that are idle (at least 1);
  on an idle machine torch's and Lightning's own defaults (one thread per core, divided among the processes of a
  distributed run);
- for the training commands (``train``, ``train-prior``, ``quickstart``) in one process: a ``ThreadGovernor``
  that keeps following the load while they train (every few seconds, as many threads as cores that other processes
  leave idle), so that a job started on an idle machine gives cores back when others start, and takes them again
  when they end; OpenMP's own spin count stays, which keeps idle speed (a spin count of 10,000 cost a third of it);
- for every other command, a spin count of 10,000, so waiting threads soon sleep and give the core back (a
  distributed training keeps OpenMP's spinning and has no governor: set ``GOMP_SPINCOUNT=10000`` for it on a
  shared machine).

A user's ``OMP_NUM_THREADS``, ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins, and so does ``train.threads``: either
turns the governor off.
"""

from __future__ import annotations

import os
import time

SPIN_COUNT = "10000"
ADAPTIVE_COMMANDS = ("train", "train-prior", "quickstart")
# set by apply_cpu_defaults: this process's threads are audiogen's to choose while it trains (the user set none)
adaptive = False


# what apply_cpu_defaults wrote into the environment: a later call in the same process must not read it as the user's
_ours: dict = {}


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def thread_cap() -> int:
    """The most threads a job should take: its usable CPUs, counted as physical cores (torch's own default; a
    hyperthread sibling adds little to matrix work) and within a cgroup CPU quota (a container's share)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cap = len(cpus) or usable_cores()
    try:
        cores = set()
        for c in cpus:
            topo = f"/sys/devices/system/cpu/cpu{c}/topology/"
            with open(topo + "physical_package_id") as a, open(topo + "core_id") as b:
                cores.add((a.read().strip(), b.read().strip()))
        cap = min(cap, len(cores) or cap)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cap = min(cap, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cap)


def free_cores(window: float = 0.2) -> int:
    """Cores this process may use that were idle over ``window`` seconds just now (at least 1). Linux's /proc/stat
    (all CPUs); elsewhere the 1-minute load average, which lags a job that has just started."""
    usable = usable_cores()
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


def _cpu_times(cpus=None) -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all CPUs (the first line of /proc/stat), or of the CPUs numbered ``cpus``."""
    idle = total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *rest = line.split()
            if not name.startswith("cpu"):
                break
            if (cpus is None and name == "cpu") or (cpus is not None and name[3:].isdigit() and int(name[3:]) in cpus):
                fields = [int(x) for x in rest]
                idle, total = idle + fields[3] + fields[4], total + sum(fields[:8])  # guest is counted in user
    return idle, total


def apply_cpu_defaults(env: dict | None = None, command: str | None = None) -> dict:
    """Set the defaults in ``env`` (os.environ) unless already set; returns what was set. Call before torch loads:
    OpenMP reads these once. ``command``: the audiogen command about to run (a training command's threads then
    follow the load, see ``ThreadGovernor``)."""
    global adaptive
    env = os.environ if env is None else env
    for key, value in _ours.items():  # set by an earlier call in this process, not by the user
        if env.get(key) == value:
            del env[key]
    chosen = {}
    user_policy = "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env
    adaptive = (command in ADAPTIVE_COMMANDS and "OMP_NUM_THREADS" not in env and not user_policy
                and os.path.exists("/proc/stat"))  # what the governor reads (Linux)
    if "OMP_NUM_THREADS" not in env:
        # Only when cores are busy: left unset on an idle machine, torch takes one thread per core and Lightning
        # divides the cores among the processes of a distributed run (it does so only when this is unset).
        free = free_cores()
        if free < usable_cores():
            chosen["OMP_NUM_THREADS"] = str(free)
    # not for a training command: its governor takes one thread under load (one thread waits at no barrier), and
    # the spin count would cost a third of its idle speed (a distributed training, which has no governor, then
    # keeps OpenMP's spinning: set GOMP_SPINCOUNT=10000 for it on a shared machine)
    if not user_policy and not adaptive:
        chosen["GOMP_SPINCOUNT"] = SPIN_COUNT
    env.update(chosen)
    _ours.clear()
    _ours.update(chosen)
    return chosen


class ThreadGovernor:
    """Follows the load while a job runs: ``poll()``, called often (every training step), returns every
    ``interval`` seconds as many threads as cores that other processes left idle over that time (at least 1, at
    most ``thread_cap()``). Others' use is that of the CPUs this process may run on (``/proc/stat``) less this
    process's own CPU time, which counts its spinning threads, so its own threads never look like someone else's
    load. Raises OSError where there is no ``/proc/stat``."""

    def __init__(self, interval: float = 3.0):
        self.cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None  # None: all of them
        self.interval, self.cores, self.cap = float(interval), usable_cores(), thread_cap()
        self._mark()

    def _mark(self) -> None:
        self.wall, self.own, (self.idle, self.total) = time.monotonic(), time.process_time(), _cpu_times(self.cpus)

    def others_busy(self) -> float:
        """Cores busy with other processes since the last mark (and set a new mark)."""
        wall, own, (idle, total) = time.monotonic(), time.process_time(), _cpu_times(self.cpus)
        busy = self.cores * (1 - (idle - self.idle) / max(total - self.total, 1))
        mine = (own - self.own) / max(wall - self.wall, 1e-6)
        self.wall, self.own, self.idle, self.total = wall, own, idle, total
        return max(0.0, busy - mine)

    def poll(self) -> int | None:
        if time.monotonic() - self.wall < self.interval:
            return None
        try:
            others = self.others_busy()
        except (OSError, ValueError, IndexError):  # no /proc/stat: keep the threads as they are
            return None
        return max(1, min(self.cap, round(self.cores - others)))

    def follow(self) -> int | None:
        """``poll()`` applied: torch's threads set to its answer; returns the new count when it changed."""
        import torch

        threads = self.poll()
        if threads and threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            return threads
        return None
