"""Every command, given malformed bindings or damaged artifacts, fails the way the README promises: one message
naming the file or value, exit code 2, no traceback. In-process (CliRunner, catch_exceptions=False: an exception
that is not the CLI's clean error fails the test with its traceback).

A case is one line: (id, args, words the message must hold); args and words may name the paths of `W` below.
"""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
from conftest import run_failing, run_here, write_tone

AE = ["--gin", "pipelines/conv_ae.gin"]
PRIOR = ["--gin", "pipelines/vrnn_latents.gin", "--bind", "DZ=4", "--bind", "HIDDEN=8", "--bind", "MIXTURE=2",
         "--bind", "LATENT_SIZE=4", "--bind", "train_prior.crop_frames=8", "--bind", "train.batch_size=2", "--bind", "train.max_steps=1"]


class W:
    """The artifacts of one test: a trained run, a corpus, a latent dataset, and damaged copies of them."""

    def __init__(self, tmp: Path, run: Path, corpus: Path, lat: Path):
        self.tmp, self.run, self.corpus, self.lat = tmp, run, corpus, lat
        self.ckpt = run / "model.ckpt"
        self.wav = sorted(corpus.rglob("*.wav"))[0]
        self.out = tmp / "out"

    @cached_property
    def zero_ckpt(self) -> Path:
        p = self.tmp / "zero.ckpt"
        p.write_bytes(b"")
        return p

    @cached_property
    def torn_ckpt(self) -> Path:
        p = self.tmp / "torn.ckpt"
        p.write_bytes(self.ckpt.read_bytes()[:3000])
        return p

    def _edited_ckpt(self, name: str, edit) -> Path:
        import torch

        ck = torch.load(self.ckpt, map_location="cpu", weights_only=True)
        edit(ck)
        torch.save(ck, self.tmp / name)
        return self.tmp / name

    @cached_property
    def odd_state_ckpt(self) -> Path:
        """Loads with weights_only=True, but a weight is a string."""
        return self._edited_ckpt("odd_state.ckpt", lambda ck: ck["state_dict"].update({"pipeline.x": "text"}))

    @cached_property
    def odd_built_ckpt(self) -> Path:
        return self._edited_ckpt("odd_built.ckpt", lambda ck: ck["audiogen"].update(built_components=[1]))

    @cached_property
    def torn_last(self) -> Path:
        """A run folder whose resume point was torn (a copy cut short)."""
        run = self.tmp / "torn_run"
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "checkpoints" / "last.ckpt").write_bytes(self.ckpt.read_bytes()[:3000])
        return run

    def _lat_copy(self, name: str) -> Path:
        d = self.tmp / name
        shutil.copytree(self.lat, d)
        return d

    @cached_property
    def bad_meta(self) -> Path:
        d = self._lat_copy("bad_meta")
        (d / "meta.json").write_text('{"format": "audiogen.latents", "version": 1,')
        return d

    @cached_property
    def bad_shard(self) -> Path:
        d = self._lat_copy("bad_shard")
        shard = sorted((d / "shards").glob("*.npy"))[0]
        shard.write_bytes(shard.read_bytes()[:100])
        return d

    @cached_property
    def bad_npy(self) -> Path:
        p = self.tmp / "bad.npy"
        p.write_bytes(b"\x93NUMPY this is not an array")
        return p

    @cached_property
    def bad_npy_dir(self) -> Path:
        d = self.tmp / "seqs"
        d.mkdir(exist_ok=True)
        np.save(d / "good.npy", np.zeros((20, 3), np.float32))
        (d / "bad.npy").write_bytes(b"\x93NUMPY this is not an array")
        return d

    @cached_property
    def unclosed_gin(self) -> Path:
        p = self.tmp / "unclosed.gin"
        p.write_text("train.lr = [1e-3\n")
        return p

    @cached_property
    def binary_gin(self) -> Path:
        p = self.tmp / "binary.gin"
        p.write_bytes(bytes(range(256)) * 4)
        return p

    @cached_property
    def labels(self) -> Path:
        p = self.tmp / "labels.csv"
        p.write_text("path,speaker\n" + "".join(f"{f},s{i % 2}\n" for i, f in enumerate(sorted(
            self.corpus.rglob("*.wav"))[:4])))
        return p

    @cached_property
    def partial(self) -> Path:
        """An interrupted encode: only OUT.partial exists."""
        out = self.tmp / "interrupted"
        (out.with_name("interrupted.partial") / "shards").mkdir(parents=True, exist_ok=True)
        return out


def _train(w):
    return ["train", *AE, w.corpus / "train.txt", "-o", w.out, "--no-progress"]


def _decode(w):
    return ["decode", "--run", w.run, w.lat, "-o", w.out]


# (id, args(w), words(w)); the words are what the message must name (the file or the value)
CASES = [
    # malformed bindings and gin files, for every command that takes them
    ("train-unclosed-bind", lambda w: [*_train(w), "--bind", "train.lr=[1"], lambda w: ["train.lr=[1", "unclosed"]),
    ("train-unclosed-gin", lambda w: [*_train(w), "--gin", w.unclosed_gin], lambda w: [w.unclosed_gin, "unclosed"]),
    ("train-max_steps-str", lambda w: [*_train(w), "--bind", "train.max_steps='abc'"],
     lambda w: ["train.max_steps", "'abc'", "str", "fix:"]),
    ("train-lr-str", lambda w: [*_train(w), "--bind", "train.lr='1e-3'"], lambda w: ["train.lr", "'1e-3'", "str"]),
    ("train-val_every-float", lambda w: [*_train(w), "--bind", "train.val_every=2.5"],
     lambda w: ["train.val_every", "2.5", "float"]),
    ("train-seed-list", lambda w: [*_train(w), "--bind", "train.seed=[1]"], lambda w: ["train.seed", "[1]", "list"]),
    ("train-threads-str", lambda w: [*_train(w), "--bind", "train.threads='2'"], lambda w: ["train.threads", "'2'"]),
    ("train-max_minutes-str", lambda w: [*_train(w), "--bind", "train.max_minutes='5'"],
     lambda w: ["train.max_minutes", "'5'"]),
    ("train-sample_rate-str", lambda w: [*_train(w), "--bind", "audio.sample_rate='16k'"],
     lambda w: ["audio.sample_rate", "'16k'"]),
    ("train-max_steps-bool", lambda w: [*_train(w), "--bind", "train.max_steps=True"],
     lambda w: ["train.max_steps", "True", "bool"]),
    ("train-unclosed-quote", lambda w: [*_train(w), "--bind", "train.lr='1"], lambda w: ["train.lr='1"]),
    ("train-sample_rate-zero", lambda w: [*_train(w), "--bind", "audio.sample_rate=0"],
     lambda w: ["audio.sample_rate", "0"]),
    ("train-binary-gin", lambda w: [*_train(w), "--gin", w.binary_gin], lambda w: [w.binary_gin]),
    ("train-prior-max_steps-str", lambda w: ["train-prior", *PRIOR, "--bind", "train.max_steps='x'", w.lat, "-o",
                                             w.out], lambda w: ["train.max_steps", "'x'"]),
    ("train-prior-unclosed-bind", lambda w: ["train-prior", *PRIOR, "--bind", "DZ=(4", w.lat, "-o", w.out],
     lambda w: ["DZ=(4", "unclosed"]),
    ("encode-shard_mb-str", lambda w: ["encode", "--run", w.run, "--bind", "encode.shard_mb='64'", w.wav, "-o",
                                       w.out], lambda w: ["encode.shard_mb", "'64'"]),
    ("encode-chunk-zero", lambda w: ["encode", "--run", w.run, "--bind", "encode.chunk_seconds=0", w.wav, "-o",
                                     w.out], lambda w: ["encode.chunk_seconds", "0"]),
    ("encode-unclosed-bind", lambda w: ["encode", "--run", w.run, "--bind", "audio.sample_rate=(1", w.wav, "-o",
                                        w.out], lambda w: ["audio.sample_rate=(1", "unclosed"]),
    ("decode-unclosed-gin", lambda w: [*_decode(w), "--gin", w.unclosed_gin], lambda w: [w.unclosed_gin]),
    ("evaluate-unclosed-bind", lambda w: ["evaluate", "--run", w.run, w.wav, "--bind", "x=[", "--no-progress"],
     lambda w: ["x=[", "unclosed"]),
    ("reconstruct-unclosed-bind", lambda w: ["reconstruct", "--run", w.run, w.wav, "-o", w.out, "--bind", "x={"],
     lambda w: ["x={"]),
    ("sample-unclosed-bind", lambda w: ["sample", "--run", w.run, "-o", w.out, "--bind", "x=("], lambda w: ["x=("]),
    ("explore-unclosed-bind", lambda w: ["explore", "mean", "--run", w.run, w.wav, "-o", w.out, "--bind", "x=["],
     lambda w: ["x=["]),
    ("probe-unclosed-bind", lambda w: ["probe", "--run", w.run, "--labels", w.labels, "-o", w.out, "--bind", "x=["],
     lambda w: ["x=["]),
    # damaged checkpoints
    ("encode-zero-ckpt", lambda w: ["encode", "--run", w.zero_ckpt, w.wav, "-o", w.out],
     lambda w: [w.zero_ckpt, "0 bytes"]),
    ("decode-zero-ckpt", lambda w: ["decode", "--run", w.zero_ckpt, w.lat, "-o", w.out], lambda w: [w.zero_ckpt]),
    ("evaluate-zero-ckpt", lambda w: ["evaluate", "--run", w.zero_ckpt, w.wav], lambda w: [w.zero_ckpt]),
    ("sample-zero-ckpt", lambda w: ["sample", "--run", w.zero_ckpt, "-o", w.out], lambda w: [w.zero_ckpt]),
    ("reconstruct-zero-ckpt", lambda w: ["reconstruct", "--run", w.zero_ckpt, w.wav, "-o", w.out], lambda w: [w.zero_ckpt]),
    ("info-zero-ckpt", lambda w: ["info", w.zero_ckpt], lambda w: [w.zero_ckpt, "0 bytes"]),
    ("explore-zero-ckpt", lambda w: ["explore", "interpolate", "--run", w.zero_ckpt, w.wav, w.wav, "-o", w.out],
     lambda w: [w.zero_ckpt]),
    ("probe-zero-ckpt", lambda w: ["probe", "--run", w.zero_ckpt, "--labels", w.labels, "-o", w.out], lambda w: [w.zero_ckpt]),
    ("info-odd-state", lambda w: ["info", w.odd_state_ckpt], lambda w: [w.odd_state_ckpt, "pipeline.x"]),
    ("decode-odd-state", lambda w: ["decode", "--run", w.odd_state_ckpt, w.lat, "-o", w.out],
     lambda w: [w.odd_state_ckpt, "pipeline.x"]),
    ("info-odd-built", lambda w: ["info", w.odd_built_ckpt], lambda w: [w.odd_built_ckpt, "built_components"]),
    ("reconstruct-odd-built", lambda w: ["reconstruct", "--run", w.odd_built_ckpt, w.wav, "-o", w.out],
     lambda w: [w.odd_built_ckpt, "built_components"]),
    # a binding that changes the architecture: weights of other shapes (gin keeps the names)
    ("reconstruct-other-shapes", lambda w: ["reconstruct", "--run", w.run, w.wav, "-o", w.out, "--bind", "CHANNELS=[8, 32]"],
     lambda w: [w.ckpt, "shape", "--bind"]),
    ("info-torn-ckpt", lambda w: ["info", w.torn_ckpt], lambda w: [w.torn_ckpt, "copy the file again"]),
    ("train-torn-last", lambda w: ["train", w.wav, "-o", w.torn_last],
     lambda w: [w.torn_last / "checkpoints" / "last.ckpt", "restore", "delete it"]),
    # damaged latent datasets and .npy latents
    ("info-bad-meta", lambda w: ["info", w.bad_meta], lambda w: [w.bad_meta / "meta.json", "not valid JSON"]),
    ("decode-bad-meta", lambda w: ["decode", w.bad_meta, "-o", w.out], lambda w: [w.bad_meta / "meta.json"]),
    ("train-prior-bad-meta", lambda w: ["train-prior", *PRIOR, w.bad_meta, "-o", w.out],
     lambda w: [w.bad_meta / "meta.json"]),
    ("probe-bad-meta", lambda w: ["probe", w.bad_meta, "--labels", w.labels, "-o", w.out],
     lambda w: [w.bad_meta / "meta.json"]),
    ("decode-bad-shard", lambda w: ["decode", "--run", w.run, w.bad_shard, "-o", w.out],
     lambda w: [w.bad_shard / "shards", "re-encode"]),
    ("train-prior-bad-shard", lambda w: ["train-prior", *PRIOR, w.bad_shard, "-o", w.out, "--no-progress"],
     lambda w: [w.bad_shard / "shards"]),
    ("train-prior-bad-npy", lambda w: ["train-prior", *PRIOR, w.bad_npy_dir, "-o", w.out, "--no-progress"],
     lambda w: [w.bad_npy_dir / "bad.npy"]),
    # an interrupted encode is named as one, with the way to resume it
    ("info-interrupted", lambda w: ["info", w.partial], lambda w: [w.partial.name + ".partial", "re-run"]),
    ("decode-interrupted", lambda w: ["decode", w.partial, "-o", w.out], lambda w: ["interrupted", "re-run"]),
    ("decode-bad-npy", lambda w: ["decode", "--run", w.run, w.bad_npy, "-o", w.out], lambda w: [w.bad_npy]),
    ("export-zero-ckpt", lambda w: ["export", "--run", w.zero_ckpt, "-o", w.out / "m.ts"], lambda w: [w.zero_ckpt]),
    ("export-torn-ckpt", lambda w: ["export", "--run", w.torn_ckpt, "-o", w.out / "m.ts"], lambda w: [w.torn_ckpt]),
]


@pytest.fixture(scope="module")
def lat(tmp_path_factory, tiny_run, corpus) -> Path:
    out = tmp_path_factory.mktemp("lat") / "lat"
    run_here("encode", "--run", tiny_run, corpus / "train.txt", "-o", out, "--no-progress")
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_command_fails_cleanly(case, tmp_path, tiny_run, corpus, lat):
    _, args, words = case
    w = W(tmp_path, tiny_run, corpus, lat)
    text = run_failing(*args(w))
    assert "audiogen: error:" in text and text.count("audiogen: error:") == 1, text
    for word in words(w):
        assert str(word) in text, f"{word!r} not in:\n{text}"
    # nothing half-written; a run folder may keep the logs of the failed start (its index is the next test's)
    left = [p for p in w.out.rglob("*") if p.is_file() and p.relative_to(w.out).parts[0] != "logs"] \
        if w.out.exists() else []
    assert not left, f"partial output left: {left}"


def test_every_command_is_covered():
    """A new command gets a case here."""
    from audiogen.cli import cli

    covered = {c[0].split("-")[0] for c in CASES} | {"train-prior"}
    names = set(cli.commands) - {"plugins", "configs", "quickstart", "index"}
    assert names <= covered | {"train-prior"}, names - covered


def test_index_of_a_missing_input_is_one_message(tmp_path):
    write_tone(tmp_path / "a.wav")
    text = run_failing("index", tmp_path / "nowhere", "-o", tmp_path / "m.csv")
    assert str(tmp_path / "nowhere") in text
