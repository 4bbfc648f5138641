"""One writer per output: encode folders and run folders are locked (artifacts.take_lock), and the lock never has
a window in which a second writer can take it (an empty lock file, or a lock released before the final rename)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import audiogen_exe, tiny_binds
from conftest import cli_main as _cli
from conftest import refused as _refused

from audiogen.artifacts import release_lock, take_lock
from audiogen.errors import ArtifactError


def _racer(folder: str, start, results) -> None:
    start.wait()
    try:
        take_lock(Path(folder), "test")
        results.put(os.getpid())
        time.sleep(0.3)  # hold it while the others try
    except ArtifactError:
        results.put(0)


@pytest.mark.parametrize("stale", [False, True])
def test_racing_writers_get_one_lock(tmp_path, stale):
    """Eight processes race for a free folder, or for one whose lock a dead process left: exactly one wins."""
    ctx = multiprocessing.get_context("fork")
    for rnd in range(3):
        folder = tmp_path / f"r{rnd}"
        folder.mkdir()
        if stale:
            (folder / "lock").write_text(f"999999999 {socket.gethostname()}")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(str(folder), start, results)) for _ in range(8)]
        for p in procs:
            p.start()
        start.set()
        won = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join()
        assert sum(1 for w in won if w) == 1, won


def test_release_never_removes_another_writers_lock(tmp_path):
    (tmp_path / "lock").write_text(f"{os.getppid()} {socket.gethostname()}")
    release_lock(tmp_path / "lock")
    assert (tmp_path / "lock").exists()
    with pytest.raises(ArtifactError, match=f"pid {os.getppid()}"):
        take_lock(tmp_path, "encode")


def test_second_train_on_a_running_folder_is_refused(tmp_path, corpus):
    run = tmp_path / "run"
    args = ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind", "train.max_steps=100000",
            str(corpus / "train.txt"), "-o", str(run), "--no-progress"]
    first = subprocess.Popen(audiogen_exe() + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (run / "lock").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert (run / "lock").read_text().split()[0] == str(first.pid)
        msg = _refused(*args)
        assert f"another training run (pid {first.pid})" in msg and str(run) in msg, msg
        assert first.poll() is None and (run / "lock").read_text().split()[0] == str(first.pid)
    finally:
        first.kill()
        first.wait()


def test_a_running_runs_half_written_folder_is_refused_as_running(tmp_path, corpus):
    """The first run holds the lock but has written no run marker yet (its index is still a temporary file): the
    second is told another run is writing there, not that the folder is foreign (the order CI once raced)."""
    run = tmp_path / "run"
    (run / "index").mkdir(parents=True)
    (run / "index" / ".train.json.tmp").write_text("{")
    (run / "lock").write_text(f"{os.getppid()} {socket.gethostname()}")  # a live process holds it
    msg = _refused("train", "--gin", "pipelines/conv_ae.gin", str(corpus / "train.txt"), "-o", str(run))
    assert f"another training run (pid {os.getppid()})" in msg, msg
    assert (run / "index" / ".train.json.tmp").exists()


def test_train_prior_is_locked_too_and_a_refused_run_leaves_no_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "lock").write_text(f"{os.getppid()} {socket.gethostname()}")  # a live process holds it
    data = tmp_path / "data"
    data.mkdir()
    msg = _refused("train-prior", "--gin", "pipelines/vrnn_latents.gin", str(data), "-o", run)
    assert "another training run" in msg and (run / "lock").exists(), msg
    # refused on its configuration before anything ran: the folder made for the lock is gone again
    fresh = tmp_path / "new" / "run"
    _refused("train", str(data), "-o", fresh)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["train", "train_prior"])
def test_overwrite_of_a_folder_another_run_writes_is_refused_and_deletes_nothing(tmp_path, command):
    from audiogen.workflows.train import train
    from audiogen.workflows.train_prior import train_prior

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"the running run's")
    (run / "lock").write_text(f"{os.getppid()} {socket.gethostname()}")  # a live process holds it
    workflow = {"train": train, "train_prior": train_prior}[command]
    data = [str(tmp_path / "audio")] if command == "train" else str(tmp_path / "latents")
    with pytest.raises(ArtifactError, match="another training run"):
        workflow(data, run, ["pipelines/conv_ae.gin"], [], progress=False, overwrite=True)
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == b"the running run's"
    assert (run / "lock").read_text().split()[0] == str(os.getppid())


def test_encode_keeps_its_lock_until_the_dataset_is_in_place(tmp_path, tiny_run, corpus, monkeypatch):
    import audiogen.latents.encode as encode

    out, seen = tmp_path / "lat", []
    real = os.replace

    def spy(src, dst):
        if Path(dst) == out:
            seen.append((Path(src) / "lock").exists())
        return real(src, dst)

    monkeypatch.setattr(encode.os, "replace", spy)
    _cli("encode", "--run", tiny_run, corpus / "train.txt", "-o", out, "--no-progress")
    assert seen == [True]  # locked at the final rename
    assert (out / "meta.json").exists() and not (out / "lock").exists()  # and released after it


@pytest.mark.parametrize("kind", ["dir", "symlink", "fifo"])
def test_a_lock_that_is_no_file_is_one_message(tmp_path, kind):
    """A planted `lock` that is a folder, a link (here to an endless file) or a pipe is never read through: one
    message naming it and saying to remove it, without hanging."""
    lock = tmp_path / "lock"
    if kind == "dir":
        lock.mkdir()
    elif kind == "symlink":
        lock.symlink_to("/dev/zero")
    else:
        os.mkfifo(lock)
    with pytest.raises(ArtifactError) as err:
        take_lock(tmp_path, "encode")
    assert str(lock) in str(err.value) and "not a lock file" in str(err.value), str(err.value)
    assert lock.exists() or lock.is_symlink()


@pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"99999999999999999999999 " + socket.gethostname().encode(),
                                     "\u00b2 ".encode() + socket.gethostname().encode(), b"9" * 5000, b""])
def test_a_garbled_lock_is_taken_over(tmp_path, content):
    """Content no audiogen wrote (not UTF-8, a pid out of range, a digit int() rejects) is a stale lock."""
    (tmp_path / "lock").write_bytes(content)
    lock = take_lock(tmp_path, "encode")
    assert lock.read_text().split(" ")[0] == str(os.getpid())
    release_lock(lock)
    assert not lock.exists()
