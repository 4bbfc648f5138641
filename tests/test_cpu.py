"""CPU defaults for a shared machine (figures: scripts/benchmark_threads.py): chosen once, before torch loads, and
never over what the user set."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import types

import pytest

from audiogen import cpu
from audiogen.cpu import SPIN_COUNT, ThreadGovernor, apply_cpu_defaults, free_cores, usable_cores


@contextlib.contextmanager
def spinning(n: int = 1):
    """``n`` other processes, each keeping one core busy."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.3)  # started
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_defaults_fill_only_what_the_user_left_unset():
    env: dict = {}
    chosen = apply_cpu_defaults(env)
    assert env == chosen and env["GOMP_SPINCOUNT"] == SPIN_COUNT
    # set only when some cores are busy (an idle machine keeps torch's and Lightning's per-process defaults)
    assert 1 <= int(env.get("OMP_NUM_THREADS", 1)) < max(2, len(os.sched_getaffinity(0)))
    mine = {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    assert apply_cpu_defaults(mine) == {} and mine == {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}
    assert not cpu.adaptive


def test_a_training_command_follows_the_load_unless_the_user_chose():
    """Training commands keep OpenMP's spin count (idle speed) and let their threads follow the load; any thread or
    wait-policy setting of the user's turns that off, as does a command that is not a training."""
    try:
        env: dict = {}
        apply_cpu_defaults(env, command="train")
        assert cpu.adaptive and "GOMP_SPINCOUNT" not in env
        for mine in ({"OMP_NUM_THREADS": "2"}, {"GOMP_SPINCOUNT": "5"}, {"OMP_WAIT_POLICY": "PASSIVE"}):
            apply_cpu_defaults(dict(mine), command="train-prior")
            assert not cpu.adaptive, mine
        env = {}
        apply_cpu_defaults(env, command="encode")
        assert not cpu.adaptive and env["GOMP_SPINCOUNT"] == SPIN_COUNT
    finally:
        cpu.adaptive = False


def test_a_second_command_in_one_process_reads_audiogens_own_settings_as_unset():
    """quickstart, or a script calling the CLI twice: what audiogen wrote is not the user's choice."""
    from audiogen.cli import command_of

    try:
        env: dict = {}
        apply_cpu_defaults(env, command="encode")  # writes GOMP_SPINCOUNT
        apply_cpu_defaults(env, command=command_of(["-v", "train", "--gin", "x.gin"]))
        assert cpu.adaptive and "GOMP_SPINCOUNT" not in env
    finally:
        cpu.adaptive = False
        cpu._ours.clear()


def test_the_thread_cap_counts_physical_cores_the_process_may_use():
    assert 1 <= cpu.thread_cap() <= usable_cores()


def test_the_governor_counts_other_processes_not_its_own_threads():
    import torch

    governor = ThreadGovernor(interval=0)
    time.sleep(0.5)
    quiet = governor.others_busy()  # whatever else this machine runs
    a = torch.randn(512, 512)
    t = time.monotonic()
    while time.monotonic() - t < 0.5:  # this process busy on all its threads: not someone else's load
        a @ a
    assert governor.others_busy() < quiet + 0.5
    with spinning(1):
        governor.others_busy()
        time.sleep(0.5)
        assert governor.others_busy() > quiet + 0.5
        time.sleep(0.5)
        assert 1 <= governor.poll() <= max(1, cpu.thread_cap() - 1)


@pytest.mark.skipif(cpu.thread_cap() < 2, reason="one core: nothing to give back")
def test_training_gives_a_thread_back_when_another_process_starts():
    """FollowTheLoad between two steps: one fewer thread while another process spins, the change recorded."""
    import torch

    from audiogen.training.run import FollowTheLoad

    before = torch.get_num_threads()
    module = types.SimpleNamespace(device=torch.device("cpu"), _trained_on={"threads": before})
    callback = FollowTheLoad()
    callback.on_fit_start(None, module)
    callback.governor.interval = 0
    try:
        torch.set_num_threads(cpu.thread_cap())
        with spinning(1):
            callback.governor.others_busy()  # from now on
            time.sleep(0.5)
            callback.on_train_batch_end(None, module, None, None, 0)
            assert torch.get_num_threads() <= cpu.thread_cap() - 1
            assert module._trained_on["threads_followed_the_load"] == [torch.get_num_threads()]
    finally:
        torch.set_num_threads(before)


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
