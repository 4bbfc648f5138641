"""The one check of `-o` (audiogen.artifacts.check_output): never an input, never under a file, a non-empty folder
only with --overwrite, and --overwrite empties only a folder that holds the command's own earlier output."""

from __future__ import annotations

import os

import pytest
from conftest import run_failing, run_here, tiny_binds, write_tone

TRAIN = ["train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), "--no-progress"]


@pytest.fixture
def audio(tmp_path):
    d = tmp_path / "cc"
    for i in range(2):
        write_tone(d / f"spk01_{i}.wav", seconds=0.3, freq=300 + 100 * i)
    return d


def _contents(d):
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))


def test_train_overwrite_never_empties_an_input_or_a_folder_that_is_no_run(tmp_path, audio):
    before = _contents(audio)
    out = run_failing(*TRAIN, audio, "-o", audio, "--overwrite")
    assert str(audio) in out and "input" in out and _contents(audio) == before
    assert "input" in run_failing(*TRAIN, audio, "-o", audio / "run", "--overwrite")  # inside the input
    assert not (audio / "run").exists()
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work")
    for extra in (["--overwrite"], []):  # without --overwrite a folder that is no run is refused too (resume aside)
        out = run_failing(*TRAIN, audio, "-o", docs, *extra)
        assert str(docs) in out and "checkpoints" in out
        assert _contents(docs) == ["thesis.tex"]
    # a link to a run folder: --overwrite refused, the target untouched
    target = tmp_path / "real_run"
    (target / "checkpoints").mkdir(parents=True)
    (target / "model.ckpt").write_bytes(b"weights")
    (tmp_path / "lnk").symlink_to(target)
    out = run_failing(*TRAIN, audio, "-o", tmp_path / "lnk", "--overwrite")
    assert "symbolic link" in out and (target / "model.ckpt").read_bytes() == b"weights"


def test_train_prior_overwrite_never_empties_its_latent_dataset(tmp_path):
    enc = tmp_path / "encX"
    enc.mkdir()
    (enc / "meta.json").write_text("{}")
    out = run_failing("train-prior", "--gin", "priors/gru.gin", enc, "-o", enc, "--overwrite", "--no-progress")
    assert "input" in out and (enc / "meta.json").read_text() == "{}"


@pytest.mark.parametrize("command", ["sample", "reconstruct", "evaluate", "interpolate", "quickstart"])
def test_an_output_that_is_a_file_or_under_one_is_an_error_not_a_traceback(tmp_path, tiny_run, audio, command):
    afile = tmp_path / "afile"
    afile.write_text("x")
    wav = audio / "spk01_0.wav"
    args = {"sample": ["sample", "--run", tiny_run],
            "reconstruct": ["reconstruct", "--run", tiny_run, wav],
            "evaluate": ["evaluate", "--run", tiny_run, wav],
            "interpolate": ["explore", "interpolate", "--run", tiny_run, wav, audio / "spk01_1.wav"],
            "quickstart": ["quickstart", audio]}[command]
    for out in (afile, afile / "sub"):
        text = run_failing(*args, "-o", out, "--no-progress")
        assert f"{afile} is a file, not a folder" in text and "-o" in text
    assert afile.read_text() == "x"


def test_reconstruct_never_writes_over_its_input(tmp_path, tiny_run, audio):
    wav = audio / "spk01_0.wav"
    before = wav.read_bytes()
    out = run_failing("reconstruct", "--run", tiny_run, wav, "-o", audio, "--overwrite", "--no-progress")
    assert "input" in out and wav.read_bytes() == before


def test_quickstart_output_is_never_inside_its_audio(audio):
    for out in (audio, audio / "q"):
        assert "input" in run_failing("quickstart", audio, "-o", out, "--no-progress")
    assert not (audio / "q").exists() and not (audio / "decoded").exists()


def test_overwrite_leaves_one_runs_outputs_and_only_empties_its_own(tmp_path, tiny_run, audio):
    out = tmp_path / "rec"
    run_here("reconstruct", "--run", tiny_run, audio, "-o", out, "--no-progress")
    assert {"spk01_0.wav", "spk01_1.wav"} <= set(os.listdir(out))
    (tmp_path / "elsewhere.txt").write_text("keep")
    (out / "link").symlink_to(tmp_path / "elsewhere.txt")
    run_here("reconstruct", "--run", tiny_run, audio / "spk01_1.wav", "-o", out, "--overwrite", "--no-progress")
    assert sorted(os.listdir(out)) == ["reconstructions.json", "reconstructions.png", "spk01_1.wav"]
    assert (tmp_path / "elsewhere.txt").read_text() == "keep"  # the link was removed, not followed
    # a folder with no earlier output of the command: refused even with --overwrite
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work")
    text = run_failing("reconstruct", "--run", tiny_run, audio, "-o", docs, "--overwrite", "--no-progress")
    assert "reconstructions.json" in text and _contents(docs) == ["thesis.tex"]
    # a link to an earlier output: --overwrite refused (it would empty the folder the link points to)
    (tmp_path / "lnk").symlink_to(out)
    text = run_failing("reconstruct", "--run", tiny_run, audio, "-o", tmp_path / "lnk", "--overwrite", "--no-progress")
    assert "symbolic link" in text and "spk01_1.wav" in os.listdir(out)


@pytest.mark.parametrize("args, option", [
    (["explore", "trajectory", "--grid-steps", "0"], "--grid-steps"),
    (["explore", "trajectory", "--grid-steps", "-2"], "--grid-steps"),
    (["explore", "trajectory", "--seconds", "0"], "--seconds"),
    (["explore", "trajectory", "--seconds", "-1"], "--seconds"),
    (["explore", "interpolate", "A", "B", "--steps", "1"], "--steps"),
    (["evaluate", "X", "--iw", "0"], "--iw"),
    (["evaluate", "X", "--iw", "-3"], "--iw"),
    (["evaluate", "X", "--segment-seconds", "-1"], "--segment-seconds"),
    (["quickstart", "--max-steps", "-1"], "--max-steps"),
    (["quickstart", "--steps", "0"], "--steps"),
])
def test_out_of_range_options_are_refused_by_name_before_anything_runs(tmp_path, tiny_run, audio, args, option):
    wav = str(audio / "spk01_0.wav")
    args = [wav if a in ("A", "B", "X") else a for a in args]
    out = tmp_path / "o"
    extra = [] if args[0] == "quickstart" else ["--run", tiny_run]
    text = run_failing(*args, *extra, "-o", out, "--no-progress")
    assert option in text and not out.exists()


def test_encode_never_writes_into_or_over_its_audio(tmp_path, tiny_run, audio):
    before = _contents(audio)
    for out in (audio, audio / "latents"):
        assert "input" in run_failing("encode", "--run", tiny_run, audio, "-o", out, "--overwrite", "--no-progress")
    assert _contents(audio) == before


def test_a_run_among_the_inputs_and_a_missing_checkpoint_are_refused_with_the_way_out(tmp_path, tiny_run, audio):
    wav = audio / "spk01_0.wav"
    for command in ("evaluate", "reconstruct"):
        text = run_failing(command, "--run", tiny_run, tiny_run, wav, "-o", tmp_path / "o", "--no-progress")
        assert f"the input {tiny_run} is a run" in text and "--run" in text
    text = run_failing("sample", "--run", tmp_path / "nope.ckpt", "-o", tmp_path / "s", "--no-progress")
    assert "does not exist" in text and "fix:" in text


def test_quickstart_overwrite_empties_only_a_quickstart_folder(tmp_path, audio):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("years of work")
    for extra in ([], ["--overwrite"]):
        assert "summary.json" in run_failing("quickstart", audio, "-o", docs, *extra, "--no-progress")
    assert _contents(docs) == ["thesis.tex"]
    q = tmp_path / "q"
    quick = ["quickstart", audio, "-o", q, "--max-steps", "2", "--bind", "train.val_every=2",
             "--bind", "train.batch_size=2", "--bind", "train.crop_seconds=0.1", "--no-progress"]
    run_here(*quick)
    (q / "decoded" / "stale.wav").write_bytes((q / "decoded" / "spk01_0.wav").read_bytes())
    run_here(*quick, "--overwrite")
    assert sorted(os.listdir(q / "decoded")) == ["spk01_0.wav", "spk01_1.wav"]
