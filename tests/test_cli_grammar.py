"""One grammar for every command (`--run`, inputs as arguments, `-o`, `--overwrite`, `--no-progress`), the old
spellings kept for one release with a warning, and the workflows the commands call, called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_in_process

from audiogen.cli import cli

WRITING = ("decode", "encode", "evaluate", "export", "index", "probe", "reconstruct", "sample", "train", "train-prior",
           "quickstart")


def _deprecation(stderr: str, new: str) -> None:
    lines = [ln for ln in stderr.splitlines() if "deprecated" in ln]
    assert len(lines) == 1 and new in lines[0], stderr


def test_every_writing_command_takes_overwrite_and_long_ones_no_progress():
    def names(cmd):
        return {o for p in cmd.params for o in p.opts}

    for name in WRITING:
        assert "--overwrite" in names(cli.commands[name]), name
        assert "-o" in names(cli.commands[name]), name
    for tool in cli.commands["explore"].commands.values():
        assert {"--overwrite", "--no-progress", "--run", "-o"} <= names(tool)
    for name in ("train", "train-prior", "encode", "decode", "evaluate", "sample", "reconstruct", "probe",
                 "quickstart"):
        assert "--no-progress" in names(cli.commands[name]), name
    for name in ("encode", "decode", "evaluate", "sample", "reconstruct", "probe", "export"):
        assert "--run" in names(cli.commands[name]), name
    # one meaning per spelling: --steps is gone from every command's help
    for cmd in [*cli.commands.values(), *cli.commands["explore"].commands.values()]:
        shown = {o for p in cmd.params if not getattr(p, "hidden", False) for o in p.opts}
        assert not {"--steps", "--ckpt", "--data", "--grid-steps", "--decoder-ckpt"} & shown, cmd.name


def test_an_existing_output_is_refused_without_overwrite(tmp_path, tiny_run):
    np.save(tmp_path / "z.npy", np.zeros((4, 8), np.float32))
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    proc = run_in_process("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", out, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(out) in proc.stderr and "--overwrite" in proc.stderr and not (out / "z.wav").exists()
    run_in_process("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", out, "--overwrite")
    assert (out / "z.wav").is_file() and (out / "keep.txt").read_text() == "earlier results"
    # an empty folder is not an earlier output; a file is
    (tmp_path / "empty").mkdir()
    run_in_process("decode", "--run", tiny_run, tmp_path / "z.npy", "-o", tmp_path / "empty")
    manifest = tmp_path / "m.csv"
    manifest.write_text("x")
    proc = run_in_process("index", tmp_path / "empty", "-o", manifest, check=False)
    assert proc.returncode == 2 and str(manifest) in proc.stderr and manifest.read_text() == "x"
    run_in_process("index", tmp_path / "empty", "-o", manifest, "--overwrite")
    assert manifest.read_text().startswith("path,")


def test_old_option_spellings_warn_and_work(tmp_path, tiny_run, corpus):
    files = sorted(corpus.rglob("*.wav"))
    # a renamed option: --ckpt is --run
    np.save(tmp_path / "z.npy", np.zeros((4, 8), np.float32))
    proc = run_in_process("decode", "--ckpt", tiny_run, tmp_path / "z.npy", "-o", tmp_path / "d")
    _deprecation(proc.stderr, "--run")
    assert (tmp_path / "d" / "z.wav").is_file()
    # a renamed count: explore interpolate --steps is --points
    proc = run_in_process("explore", "interpolate", "--run", tiny_run, files[0], files[1], "--steps", "3",
                          "-o", tmp_path / "i")
    _deprecation(proc.stderr, "--points")
    assert len(list((tmp_path / "i").glob("interp_*.wav"))) == 3
    assert json.loads((tmp_path / "i" / "explore.json").read_text())["points"] == 3
    # both spellings at once: one is enough
    proc = run_in_process("decode", "--ckpt", tiny_run, "--run", tiny_run, tmp_path / "z.npy", "-o", tmp_path / "e",
                          check=False)
    assert proc.returncode == 2 and "--run only" in proc.stderr


def test_the_run_as_an_argument_and_a_default_output_still_work(tmp_path, tiny_run, corpus, monkeypatch):
    files = sorted(corpus.rglob("*.wav"))[:2]
    monkeypatch.chdir(tmp_path)
    # the old `reconstruct RUN FILES...` without -o: two deprecations, the same output in ./reconstructions
    proc = run_in_process("reconstruct", tiny_run, *files)
    assert proc.stderr.count("deprecated") == 2 and "--run RUN" in proc.stderr and "-o reconstructions" in proc.stderr
    old = sorted(p.name for p in (tmp_path / "reconstructions").glob("*.wav"))
    run_in_process("reconstruct", "--run", tiny_run, *files, "-o", tmp_path / "new")
    assert old == sorted(p.name for p in (tmp_path / "new").glob("*.wav")) and len(old) == 2


def test_old_data_option_gives_the_same_answer_as_arguments(tmp_path, tiny_run, corpus):
    """`evaluate RUN --data D` (old) and `evaluate --run RUN D` reach the same check: an autoencoder has no
    likelihood to score."""
    old = run_in_process("evaluate", tiny_run, "--data", corpus / "valid.txt", check=False)
    new = run_in_process("evaluate", "--run", tiny_run, corpus / "valid.txt", check=False)
    assert old.returncode == new.returncode == 2
    assert old.stderr.count("deprecated") == 2 and "latent model" in new.stderr
    assert new.stderr.strip().splitlines()[-2:] == old.stderr.strip().splitlines()[-2:]


def test_a_missing_run_is_a_usage_error_and_the_old_argument_still_reads(tmp_path, tiny_run):
    proc = run_in_process("sample", "-o", tmp_path / "s", check=False)
    assert proc.returncode == 2 and "--run" in proc.stderr and "Traceback" not in proc.stderr
    # `sample RUN` (old): the run is read, and this autoencoder has nothing to sample from
    proc = run_in_process("sample", tiny_run, "-o", tmp_path / "s", check=False)
    assert proc.returncode == 2 and "no latent model" in proc.stderr
    _deprecation(proc.stderr, "sample --run RUN")


# ------------------------------------------------------------------------------------------ workflows directly
def test_encode_files_is_the_encode_commands_path(tmp_path, tiny_run, corpus):
    """The tools' in-memory encodings equal the latents `encode` stores (one chunked encode_array for both),
    also when a file is longer than one chunk."""
    import dataclasses

    import gin

    from audiogen.latents.dataset import LatentDataset
    from audiogen.latents.encode import encode_files
    from audiogen.pipeline import load_pipeline
    from audiogen.settings import audio_settings_for, encode_settings
    from audiogen.workflows.encode import encode

    files = sorted(corpus.rglob("*.wav"))[:3]
    done = encode([str(f) for f in files], tmp_path / "lat", tiny_run, progress=False)
    assert done.meta["num_files"] == 3 and done.record.latent_size == 4
    gin.clear_config()
    pipe, _ = load_pipeline(tiny_run)
    audio = audio_settings_for(pipe.encoder, "encoder")
    ds = LatentDataset(tmp_path / "lat")
    stored = {f["source"]: ds.sequence(i).T for i, f in enumerate(ds.files)}
    whole = encode_files(pipe.encoder, files, audio)
    tiny_chunks = dataclasses.replace(encode_settings(), chunk_seconds=0.05)  # several chunks per file
    chunked = encode_files(pipe.encoder, files, audio, tiny_chunks)
    for f, z, zc in zip(files, whole, chunked):
        np.testing.assert_allclose(z, stored[str(f)], atol=1e-5)
        np.testing.assert_allclose(zc, z, atol=1e-4)


def test_decode_workflow_directly(tmp_path, tiny_run):
    from audiogen.errors import ArtifactError
    from audiogen.workflows.decode import decode

    np.save(tmp_path / "z.npy", np.zeros((4, 8), np.float32))
    written = decode([str(tmp_path / "z.npy")], tmp_path / "o", run=tiny_run, progress=False)
    assert written == [tmp_path / "o" / "z.wav"] and written[0].is_file()
    with pytest.raises(ArtifactError, match="--overwrite"):
        decode([str(tmp_path / "z.npy")], tmp_path / "o", run=tiny_run, progress=False)


def test_index_workflow_directly(tmp_path, corpus):
    from audiogen.audio.manifest import read_manifest
    from audiogen.workflows.index import index

    (tmp_path / "bad.wav").write_bytes(b"not audio")
    done = index([str(corpus / "train.txt"), str(tmp_path / "bad.wav")], tmp_path / "m.csv")
    assert len(done.infos) == len((corpus / "train.txt").read_text().split())
    assert [e["source"] for e in done.failed] == [str(tmp_path / "bad.wav")]
    assert len(read_manifest(tmp_path / "m.csv")) == len(done.infos)
