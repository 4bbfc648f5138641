"""Bad inputs to `audiogen encode`: a clear message naming the file, exit code 2, and no partial output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_in_process, write_tone


def _no_output_left(out: Path) -> None:
    assert not out.exists(), f"{out} was left behind"
    assert not out.with_name(out.name + ".partial").exists(), "a .partial folder was left behind"


def _make(kind: str, d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return d / "nowhere.wav"
    if kind == "empty":
        p = d / "empty.wav"
        p.write_bytes(b"")
        return p
    if kind == "not_audio":
        p = d / "notes.wav"
        p.write_text("these are my notes, not audio\n" * 20)
        return p
    if kind == "random_bytes":
        p = d / "noise.flac"
        p.write_bytes(np.random.default_rng(0).bytes(5000))
        return p
    if kind == "truncated_flac":
        p = write_tone(d / "cut.flac", seconds=3.0, freq=300)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return p
    if kind == "zero_length":
        p = d / "zero.wav"
        sf.write(p, np.zeros(0), 16000)
        return p
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty", "not_audio", "random_bytes", "truncated_flac", "zero_length"])
def test_bad_file_under_strict_fails_cleanly(kind, tmp_path, tiny_run):
    bad = _make(kind, tmp_path / "in")
    good = write_tone(tmp_path / "in" / "good.wav")
    out = tmp_path / "out"
    proc = run_in_process("encode", "--run", tiny_run, good, bad, "-o", out, "--strict", check=False)
    assert proc.returncode == 2, proc.stderr
    assert bad.name in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "fix:" in proc.stderr or kind != "missing"
    _no_output_left(out)


@pytest.mark.parametrize("kind", ["empty", "not_audio", "truncated_flac", "zero_length"])
def test_bad_file_without_strict_is_listed_and_the_rest_encoded(kind, tmp_path, tiny_run):
    bad = _make(kind, tmp_path / "in")
    good = write_tone(tmp_path / "in" / "good.wav")
    out = tmp_path / "out"
    proc = run_in_process("encode", "--run", tiny_run, tmp_path / "in", "-o", out, "--no-progress")
    assert "1 files could not be read" in proc.stderr and bad.name in proc.stderr
    import json

    meta = json.loads((out / "meta.json").read_text())
    assert [Path(f["source"]).name for f in meta["files"]] == [good.name]
    assert [Path(f["source"]).name for f in meta["failed"]] == [bad.name]


def test_only_bad_files_is_an_error_with_no_output(tmp_path, tiny_run):
    bad = _make("not_audio", tmp_path / "in")
    out = tmp_path / "out"
    proc = run_in_process("encode", "--run", tiny_run, bad, "-o", out, check=False)
    assert proc.returncode == 2 and "no input file could be encoded" in proc.stderr and bad.name in proc.stderr
    _no_output_left(out)


def test_unexpected_sample_rate_with_resampling_off(tmp_path, tiny_run):
    f = write_tone(tmp_path / "in" / "eight_k.wav", sr=8000)
    out = tmp_path / "out"
    proc = run_in_process("encode", "--run", tiny_run, f, "-o", out, "--strict", "--bind", "audio.resample=False",
                          check=False)
    assert proc.returncode == 2
    assert "eight_k.wav" in proc.stderr and "8000" in proc.stderr and "16000" in proc.stderr
    assert "audio.resample" in proc.stderr
    _no_output_left(out)


def test_unexpected_sample_rate_is_resampled_by_default(tmp_path, tiny_run):
    f = write_tone(tmp_path / "in" / "eight_k.wav", sr=8000, seconds=0.5)
    out = tmp_path / "out"
    run_in_process("encode", "--run", tiny_run, f, "-o", out, "--no-progress")
    import json

    meta = json.loads((out / "meta.json").read_text())
    assert meta["files"][0]["samples"] == 8000 and meta["files"][0]["source_sample_rate"] == 8000


def test_stereo_is_downmixed_or_refused(tmp_path, tiny_run):
    f = write_tone(tmp_path / "in" / "stereo.wav", channels=2)
    run_in_process("encode", "--run", tiny_run, f, "-o", tmp_path / "ok", "--no-progress")
    out = tmp_path / "out"
    proc = run_in_process("encode", "--run", tiny_run, f, "-o", out, "--strict", "--bind", "audio.channels='error'",
                          check=False)
    assert proc.returncode == 2 and "stereo.wav" in proc.stderr and "2 channels" in proc.stderr
    _no_output_left(out)


def test_unwritable_output(tmp_path, tiny_run):
    f = write_tone(tmp_path / "in" / "a.wav")
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")  # a file where a folder is needed fails even for root
    out = blocker / "latents"
    proc = run_in_process("encode", "--run", tiny_run, f, "-o", out, check=False)
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr and "-o" in proc.stderr
    assert blocker.read_text() == "x"


def test_untrained_encoder_without_checkpoint_is_refused(tmp_path):
    f = write_tone(tmp_path / "a.wav")
    proc = run_in_process("encode", "--gin", "pipelines/conv_ae.gin", f, "-o", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "untrained" in proc.stderr and "--run" in proc.stderr


def test_missing_checkpoint_and_non_checkpoint(tmp_path):
    f = write_tone(tmp_path / "a.wav")
    proc = run_in_process("encode", "--run", tmp_path / "none.ckpt", f, "-o", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "none.ckpt" in proc.stderr
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    proc = run_in_process("encode", "--run", junk, f, "-o", tmp_path / "out", check=False)
    assert proc.returncode == 2 and "junk.ckpt" in proc.stderr and "Traceback" not in proc.stderr
