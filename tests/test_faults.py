"""Faults: kill -9 mid-training, unwritable output, a full disk, artifacts of another format version.

A full disk is simulated with RLIMIT_FSIZE in the child process (SIGXFSZ ignored, so a write past the limit fails
with EFBIG like a write to a full disk fails with ENOSPC): real writes, real failures, no mocks.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import audiogen_exe, run_in_process, tiny_binds, write_tone
from conftest import cli_main as _cli
from conftest import refused as _cli_error

from audiogen.artifacts import load_checkpoint
from audiogen.errors import ArtifactError
from audiogen.latents.dataset import LatentDataset, read_meta

PRIOR = ["--gin", "pipelines/vrnn_latents.gin", "--bind", "DZ=4", "--bind", "HIDDEN=8", "--bind", "MIXTURE=2",
         "--bind", "LATENT_SIZE=3", "--bind", "train_prior.crop_frames=16", "--bind", "train.batch_size=2"]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seq")
    rng = np.random.default_rng(0)
    for i in range(6):
        np.save(d / f"s{i}.npy", rng.normal(size=(40, 3)).astype(np.float32))
    return d


def _train_args(kind: str, corpus: Path, sequences: Path, run: Path, steps: int) -> list[str]:
    common = ["--bind", f"train.max_steps={steps}", "--bind", "train.val_every=5", "--bind", "train.log_every=1",
              "-o", str(run), "--no-progress"]
    if kind == "train":
        return ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), str(corpus / "train.txt"), *common]
    return ["train-prior", *PRIOR, str(sequences), *common]




def _limited(limit_bytes: int):
    def pre():  # in the child: writes past the limit fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return pre


def _run_limited(args: list[str], limit_bytes: int) -> subprocess.CompletedProcess:
    return subprocess.run(audiogen_exe() + [str(a) for a in args], capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(limit_bytes))


def _no_torn_files(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    for ck in folder.rglob("*.ckpt"):  # whatever checkpoint exists is complete
        load_checkpoint(ck)


# ----------------------------------------------------------------------------------------------------- kill -9
@pytest.mark.parametrize("kind", ["train", "train-prior"])
@pytest.mark.slow
def test_kill_9_during_training_then_rerun_resumes_from_the_last_checkpoint(kind, tmp_path, corpus, sequences,
                                                                          caplog):
    run, steps = tmp_path / "run", 80
    args = _train_args(kind, corpus, sequences, run, steps)
    proc = subprocess.Popen(audiogen_exe() + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not last.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; raise max_steps"
    assert not (run / "model.ckpt").exists()
    step = load_checkpoint(last)["global_step"]  # complete, never torn: written by rename
    assert step > 0 and step % 5 == 0 and step < steps

    with caplog.at_level("INFO", logger="audiogen"):
        _cli(*args)
    assert f"resuming from {last}" in caplog.text
    assert load_checkpoint(run / "model.ckpt")["audiogen"]["global_step"] == steps
    # the second start logs from the checkpoint's step on, not from 0
    rows = list(csv.DictReader(open(run / "logs" / "version_1" / "metrics.csv")))
    logged = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert min(logged) >= step and max(logged) == steps - 1


# ------------------------------------------------------------------------------------------- unwritable output
def test_unwritable_output_is_a_clear_error(tmp_path, corpus, sequences, tiny_run):
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")  # a file where a folder is needed: refused even for root
    proc = run_in_process(*_train_args("train", corpus, sequences, blocker / "run", 2), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # one message for every command (artifacts.check_output), before any work
    assert f"{blocker} is a file, not a folder" in proc.stderr
    msg = _cli_error(*_train_args("train-prior", corpus, sequences, blocker / "run", 2))
    assert f"{blocker} is a file, not a folder" in msg
    msg = _cli_error("encode", "--run", tiny_run, corpus / "train.txt", "-o", blocker / "lat")
    assert f"{blocker} is a file, not a folder" in msg
    msg = _cli_error("index", corpus, "-o", blocker / "m.csv")
    assert f"{blocker} is a file, not a folder" in msg
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; covered by the file-blocker test")
def test_read_only_folder_is_a_clear_error(tmp_path, corpus, sequences):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_in_process(*_train_args("train", corpus, sequences, ro / "run", 2), check=False)
        assert proc.returncode == 2 and "cannot write the run folder" in proc.stderr
        assert "Permission denied" in proc.stderr and not (ro / "run").exists()
    finally:
        ro.chmod(0o700)


# --------------------------------------------------------------------------------------------------- full disk
def test_full_disk_during_training_leaves_no_torn_file(tmp_path, corpus, sequences):
    """`train` here; `train-prior` writes through the same fit() and checkpoint plugin."""
    kind, run = "train", tmp_path / "run"
    # a checkpoint (weights + Adam state) is well over 8 kB; logs and the file index stay under it
    proc = _run_limited(_train_args(kind, corpus, sequences, run, 6), 8_000)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "File too large" in proc.stderr and str(run) in proc.stderr and "re-run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (run / "model.ckpt").exists()
    _no_torn_files(run)


def test_full_disk_during_encode_keeps_finished_shards_and_the_rerun_resumes(tmp_path, tiny_run):
    """Short files fill small shards that fit under the limit; the long last one's shard does not. The finished
    shards stay, so re-running the same command (with room again) encodes only the last one."""
    src = tmp_path / "in"
    for i in range(3):
        write_tone(src / f"a{i}.wav", seconds=0.3, freq=200 + 50 * i)  # 300 frames x 4 dims: ~5 kB shards
    write_tone(src / "z_long.wav", seconds=2.0)  # ~32 kB: past the limit
    out = tmp_path / "lat"
    args = ["encode", "--run", tiny_run, src, "-o", out, "--no-progress", "--bind", "encode.shard_mb=0.001"]
    proc = _run_limited(args, 12_000)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "File too large" in proc.stderr and "lat.partial" in proc.stderr and "Traceback" not in proc.stderr
    assert "3 finished shard(s) are kept" in proc.stderr and "re-run the same command" in proc.stderr
    staging = out.with_name("lat.partial")
    assert not out.exists() and not list(staging.rglob("*.tmp")) and not (staging / "lock").exists()
    kept = {p.name: p.stat().st_mtime_ns for p in (staging / "shards").glob("shard-*.npy")}
    assert len(kept) == 3
    _cli(*args)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_files"] == 4 and len(meta["shards"]) == 4
    assert {n: (out / "shards" / n).stat().st_mtime_ns for n in kept} == kept  # resumed, not re-encoded


# ---------------------------------------------------------------------------------------------- format versions
def _edit_checkpoint(src: Path, dst: Path, **changes) -> Path:
    ck = torch.load(src, map_location="cpu", weights_only=True)
    for k, v in changes.items():
        if v is None:
            ck["audiogen"].pop(k)
        else:
            ck["audiogen"][k] = v
    torch.save(ck, dst)
    return dst


def test_checkpoint_of_another_format_version(tmp_path, tiny_run, corpus):
    src = tiny_run / "model.ckpt"
    for version, words in ((0, ["version 0", "reads version 1", "retrain"]), (None, ["version None", "retrain"]),
                           (2, ["version 2", "newer than this audiogen", "upgrade audiogen"])):
        ck = _edit_checkpoint(src, tmp_path / f"v{version}.ckpt", version=version)
        with pytest.raises(ArtifactError) as err:
            load_checkpoint(ck)
        assert all(w in str(err.value) for w in words) and str(ck) in str(err.value)
        assert words[0] in _cli_error("encode", "--run", ck, corpus / "train.txt", "-o", tmp_path / f"l{version}")
    # damaged metadata of the current version
    ck = _edit_checkpoint(src, tmp_path / "nokind.ckpt", kind=None)
    with pytest.raises(ArtifactError, match="lacks kind"):
        load_checkpoint(ck)


def test_latent_dataset_of_another_format_version(tmp_path, tiny_run, corpus):
    lat = tmp_path / "lat"
    _cli("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    LatentDataset(lat)
    for version, words in ((0, ["version 0", "reads version 1", "re-encode"]),
                           (3, ["version 3", "newer than this audiogen", "upgrade audiogen"])):
        (lat / "meta.json").write_text(json.dumps({**meta, "version": version}))
        with pytest.raises(ArtifactError) as err:
            read_meta(lat)
        assert all(w in str(err.value) for w in words) and "meta.json" in str(err.value)
        assert words[0] in _cli_error("info", lat)
    del meta["version"]
    (lat / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="version None"):
        read_meta(lat)


def test_train_on_folder_reuses_its_index_on_resume(tmp_path, corpus):
    """The first start writes RUN/index/train.csv; a resumed run reads it instead of scanning and probing."""
    data = tmp_path / "data"
    for i in range(3):
        write_tone(data / f"a{i}.wav", seconds=0.3, freq=200 + 50 * i)
    run = tmp_path / "run"
    args = ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), data, "-o", run, "--no-progress"]
    _cli(*args)
    index = (run / "index" / "train.csv").read_text()
    assert index.count(".wav") == 3 and index.startswith("path,frames,sample_rate,channels,subtype")
    write_tone(data / "new.wav", seconds=0.3)  # added after the first start: a rescan would pick it up
    _cli("train", "--bind", "train.max_steps=3", data, "-o", run, "--no-progress")
    assert (run / "index" / "train.csv").read_text() == index
