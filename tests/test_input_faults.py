"""Faults of inputs that used to lose work or mislead: truncated and over-range files encoded silently, a damaged
FLAC header indexed as hours, --strict stopping at the first bad file, a missing list entry stopping a whole
encode, a failed first training start trapping the next one, and failed files hidden from `audiogen info`.
In-process commands (run_here / run_failing) on tiny files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import run_failing, run_here, tiny_binds, write_tone

from audiogen.audio.io import probe


def truncated_wav(path: Path) -> Path:
    """A wav whose header promises 1 s but whose data stops after about half of it (a copy cut short)."""
    write_tone(path, seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def loud_float_wav(path: Path) -> Path:
    """A float wav with samples far outside [-1, 1] (clipped when read)."""
    t = np.arange(8000) / 16000
    sf.write(path, (4.0 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, subtype="FLOAT")
    return path


def long_claiming_flac(path: Path, hours: float = 37.0) -> Path:
    """A small FLAC whose STREAMINFO claims ``hours`` of audio (a damaged header)."""
    write_tone(path, seconds=0.2, subtype="PCM_16")
    b = bytearray(path.read_bytes())
    assert b[:4] == b"fLaC"
    field = int.from_bytes(b[18:26], "big")  # 20 bits rate, 3 channels, 5 bits/sample, 36 total samples
    total = int(hours * 3600 * 16000)
    b[18:26] = ((field & ~((1 << 36) - 1)) | total).to_bytes(8, "big")
    path.write_bytes(bytes(b))
    return path


def test_truncated_wav_is_a_warning_recorded_per_file_and_fails_under_strict(tmp_path, tiny_run):
    good, bad = write_tone(tmp_path / "in" / "good.wav"), truncated_wav(tmp_path / "in" / "cut.wav")
    info = probe(bad)
    assert info.warnings and "truncated" in info.warnings[0] and "1.00 s" in info.warnings[0]
    out = tmp_path / "lat"
    res = run_here("encode", "--run", tiny_run, good, bad, "-o", out, "--no-progress")
    assert "warning" in res.output and "cut.wav" in res.output and "truncated" in res.output
    files = {Path(f["source"]).name: f for f in json.loads((out / "meta.json").read_text())["files"]}
    assert "truncated" in files["cut.wav"]["warnings"][0] and "warnings" not in files["good.wav"]
    text = run_failing("encode", "--run", tiny_run, good, bad, "-o", tmp_path / "strict", "--strict")
    assert "cut.wav" in text and "truncated" in text
    assert not (tmp_path / "strict").exists() and not (tmp_path / "strict.partial").exists()


def test_samples_far_outside_the_range_are_a_warning_and_fail_under_strict(tmp_path, tiny_run):
    good, loud = write_tone(tmp_path / "in" / "good.wav"), loud_float_wav(tmp_path / "in" / "loud.wav")
    out = tmp_path / "lat"
    res = run_here("encode", "--run", tiny_run, good, loud, "-o", out, "--no-progress")
    assert "loud.wav" in res.output and "clipped" in res.output
    files = {Path(f["source"]).name: f for f in json.loads((out / "meta.json").read_text())["files"]}
    assert "peak 4.0" in files["loud.wav"]["warnings"][0]
    text = run_failing("encode", "--run", tiny_run, good, loud, "-o", tmp_path / "strict", "--strict")
    assert "loud.wav" in text and "clipped" in text
    assert not (tmp_path / "strict").exists() and not (tmp_path / "strict.partial").exists()


def test_index_compares_the_header_claim_with_the_file_size(tmp_path):
    flac = long_claiming_flac(tmp_path / "in" / "claims.flac")
    assert flac.stat().st_size < 20_000
    write_tone(tmp_path / "in" / "fine.wav")
    res = run_here("index", tmp_path / "in", "-o", tmp_path / "m.csv")
    assert "claims.flac" in res.output and "37.0 h" in res.output
    assert "claims.flac" not in (tmp_path / "m.csv").read_text()


def test_strict_lists_every_bad_file_in_one_error(tmp_path, tiny_run):
    d = tmp_path / "in"
    write_tone(d / "good.wav")
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.wav").write_text("not audio\n" * 50)
    truncated_wav(d / "cut.wav")
    text = run_failing("encode", "--run", tiny_run, d, "-o", tmp_path / "lat", "--strict")
    assert text.count("audiogen: error:") == 1
    for name in ("empty.wav", "notes.wav", "cut.wav"):
        assert name in text, text
    assert "3 input files" in text
    text = run_failing("index", d, "-o", tmp_path / "m.csv", "--strict")
    assert all(n in text for n in ("empty.wav", "notes.wav", "cut.wav")) and not (tmp_path / "m.csv").exists()


def test_missing_list_entry_is_skipped_and_recorded(tmp_path, tiny_run):
    good = write_tone(tmp_path / "good.wav")
    lst = tmp_path / "list.txt"
    lst.write_text(f"{good}\ngone.wav\n")
    out = tmp_path / "lat"
    res = run_here("encode", "--run", tiny_run, lst, "-o", out, "--no-progress")
    assert "gone.wav" in res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["num_files"] == 1 and "gone.wav" in meta["failed"][0]["source"]
    assert "line 2" in meta["failed"][0]["reason"]
    text = run_failing("encode", "--run", tiny_run, lst, "-o", tmp_path / "strict", "--strict")
    assert "gone.wav" in text and "line 2" in text
    lst.write_text("gone.wav\nalso_gone.wav\n")  # nothing left: both named, not "no audio files found"
    text = run_failing("encode", "--run", tiny_run, lst, "-o", tmp_path / "none")
    assert "gone.wav" in text and "also_gone.wav" in text and "2 input files" in text
    # `info` shows why
    res = run_here("info", out)
    assert "gone.wav" in res.output and "does not exist" in res.output


def test_failed_first_training_start_does_not_trap_the_next(tmp_path, caplog):
    """A file that probes fine but cannot be decoded stops the first start; once the user removes it (as told),
    the same command runs, instead of failing again on the deleted file from the old RUN/index."""
    data = tmp_path / "data"
    for i in range(3):
        write_tone(data / f"a{i}.wav", seconds=0.5, freq=200 + 50 * i)
    bad = write_tone(data / "b.flac", seconds=3.0)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # header fine, stream cut: fails when read
    run = tmp_path / "run"
    # one batch of all the files: the first step reads the damaged one
    args = ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--bind", "train.batch_size=4", data,
            "-o", run, "--no-progress"]
    text = run_failing(*args)
    assert "b.flac" in text
    bad.unlink()
    run_here(*args)
    assert (run / "model.ckpt").exists()
    # resuming with other --data says what it does
    other = tmp_path / "other"
    write_tone(other / "c.wav", seconds=0.5)
    with caplog.at_level("WARNING", logger="audiogen"):
        run_here("train", "--bind", "train.max_steps=3", other, "-o", run, "--no-progress")
    assert "inputs differ from those this run was started with" in caplog.text and "train.csv" in caplog.text
    assert "c.wav" in (run / "index" / "train.csv").read_text()


def test_lock_of_a_live_unrelated_pid_says_how_to_remove_it(tmp_path, tiny_run):
    import os
    import socket

    lock = tmp_path / "out.partial" / "lock"
    lock.parent.mkdir()
    lock.write_text(f"{os.getppid()} {socket.gethostname()}")  # alive, and no encode
    text = run_failing("encode", "--run", tiny_run, write_tone(tmp_path / "a.wav"), "-o", tmp_path / "out")
    assert "another encode" in text and f"delete {lock}" in text
    assert lock.exists()
