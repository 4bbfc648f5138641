"""Artifacts are data: a stored operative config (checkpoint, meta.json, a run's last.ckpt) never runs code.

Each attack is a real artifact edited the way an attacker would; the marker file the payload writes proves whether
it ran. Commands run in-process (the same click path as the console script); two go through the console script.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_main as _cli
from conftest import refused as _refused
from conftest import run_cli, write_tone

from audiogen import config
from audiogen.errors import ArtifactError

IMPORT_LINE = "import subprocess"


def _payload(marker: Path) -> str:
    """Dynamic registration: the pipeline's objective becomes subprocess.run, which touches ``marker``."""
    return ("from __gin__ import dynamic_registration\n" + IMPORT_LINE + "\nimport audiogen.pipeline\n"
            "audiogen.pipeline.Pipeline.objective = @subprocess.run()\n"
            f"subprocess.run.args = ['touch', '{marker}']\n")




def _evil_checkpoint(src: Path, dst: Path, text: str) -> Path:
    ck = torch.load(src, map_location="cpu", weights_only=True)
    ck["audiogen"]["operative_config"] = ck["audiogen"]["operative_config"] + "\n" + text
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, dst)
    return dst


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_run, corpus) -> Path:
    lat = tmp_path_factory.mktemp("trust") / "lat"
    _cli("encode", "--run", tiny_run, corpus / "train.txt", "-o", lat, "--no-progress")
    return lat


def _evil_dataset(src: Path, dst: Path, text: str) -> Path:
    """A copy of the dataset whose meta names no checkpoint and carries ``text`` in its operative config."""
    import shutil

    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    meta["checkpoint"] = None
    meta["operative_config"] += "\n" + text
    (dst / "meta.json").write_text(json.dumps(meta))
    return dst


def _commands(evil: Path, tmp: Path, corpus: Path) -> dict[str, list]:
    wav = sorted(corpus.rglob("*.wav"))[0]
    npy = tmp / "z.npy"
    np.save(npy, np.zeros((4, 8), np.float32))
    return {
        "encode": ["encode", "--run", evil, corpus / "train.txt", "-o", tmp / "lat", "--no-progress"],
        "decode": ["decode", "--run", evil, npy, "-o", tmp / "dec"],
        "sample": ["sample", "--run", evil, "-n", "1", "--seconds", "0.1", "-o", tmp / "samples"],
        "evaluate": ["evaluate", "--run", evil, wav, "--no-progress"],
        "reconstruct": ["reconstruct", "--run", evil, wav, "-o", tmp / "rec"],
        "explore": ["explore", "interpolate", "--run", evil, wav, wav, "--points", "2", "-o", tmp / "exp"],
    }


@pytest.mark.parametrize("command", ["encode", "decode", "sample", "evaluate", "reconstruct", "explore"])
def test_checkpoint_config_never_runs_code(command, tmp_path, tiny_run, corpus):
    marker = tmp_path / "MARKER"
    evil = _evil_checkpoint(tiny_run / "model.ckpt", tmp_path / "evil.ckpt", _payload(marker))
    msg = _refused(*_commands(evil, tmp_path, corpus)[command])
    assert not marker.exists(), "the stored config ran code"
    assert str(evil) in msg and "dynamic_registration" in msg and "line" in msg, msg
    assert not (tmp_path / "lat").exists() and not (tmp_path / "dec").exists()


def test_dataset_config_never_runs_code(tmp_path, dataset, capfd):
    marker = tmp_path / "MARKER"
    evil = _evil_dataset(dataset, tmp_path / "evil", _payload(marker))
    msg = _refused("decode", evil, "-o", tmp_path / "dec")
    assert not marker.exists() and str(evil / "meta.json") in msg and "dynamic_registration" in msg, msg
    # `import this` prints the Zen of Python when it runs
    zen = _evil_dataset(dataset, tmp_path / "zen", "import this")
    msg = _refused("decode", zen, "-o", tmp_path / "dec")
    assert "import this" in msg and "line" in msg, msg
    assert "Beautiful is better" not in capfd.readouterr().out


def test_resumed_run_config_never_runs_code(tmp_path, tiny_run, corpus):
    """`train` re-parses checkpoints/last.ckpt when it resumes a run folder."""
    marker, run = tmp_path / "MARKER", tmp_path / "run"
    last = _evil_checkpoint(tiny_run / "model.ckpt", run / "checkpoints" / "last.ckpt", _payload(marker))
    msg = _refused("train", corpus / "train.txt", "-o", run, "--no-progress")
    assert not marker.exists() and str(last) in msg, msg


def test_console_script_refuses_stored_code(tmp_path, tiny_run, dataset, corpus):
    marker = tmp_path / "MARKER"
    evil = _evil_checkpoint(tiny_run / "model.ckpt", tmp_path / "evil.ckpt", _payload(marker))
    proc = run_cli("encode", "--run", evil, corpus / "train.txt", "-o", tmp_path / "lat", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert str(evil) in proc.stderr and not marker.exists()
    ds = _evil_dataset(dataset, tmp_path / "evil_ds", "import os")
    proc = run_cli("decode", ds, "-o", tmp_path / "dec", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "import os" in proc.stderr, proc.stderr


@pytest.mark.parametrize("text, words", [
    ("import os", ["import os", "line 2"]),
    ("from __gin__ import dynamic_registration", ["dynamic_registration"]),
    ("include '/etc/some.gin'", ["include", "/etc/some.gin"]),
    ("pipeline.objective = @gin.singleton()", ["gin.singleton"]),
    ("gin.constant.value = 1", ["gin.constant"]),
    ("X = [1, {'a': @subprocess.run()}]", ["subprocess.run"]),
    ("nothing.here.x = 1", ["nothing.here"]),
    ("audio.sample_rate = (", ["not valid gin"]),
])
def test_stored_config_refusals_name_the_line(text, words):
    stored = "LATENT_SIZE = 4\n" + text + "\n"
    with pytest.raises(ArtifactError) as err:
        config.parse(base=stored, base_source="checkpoint /x/model.ckpt")
    msg = str(err.value)
    assert "/x/model.ckpt" in msg and all(w in msg for w in words), msg


def test_shipped_configs_pass_as_stored_configs():
    """Everything the shipped pipelines bind (a superset of what an operative config records) is allow-listed:
    scoped references, macros, anneal schedules, components of every kind."""
    import gin

    for path in sorted((config.packaged_config_dir() / "pipelines").glob("*.gin")):
        config.parse([str(path)])
        text = gin.config_str()
        config.parse(base=text, base_source=str(path))  # raises if anything were refused


def test_user_gin_files_keep_full_gin(tmp_path):
    """--gin files are the user's own code: imports stay allowed there."""
    g = tmp_path / "mine.gin"
    g.write_text("import math\nLATENT_SIZE = 4\n")
    config.parse([str(g)])


def test_untouched_artifacts_still_load(tmp_path, tiny_run, dataset):
    write_tone(tmp_path / "a.wav", 0.2)
    _cli("reconstruct", "--run", tiny_run, tmp_path / "a.wav", "-o", tmp_path / "rec")
    _cli("decode", dataset, "-o", tmp_path / "dec")
    assert list((tmp_path / "dec").rglob("*.wav"))



def test_stored_configs_too_deep_or_too_long_are_one_message():
    """Nesting deeper than Python's recursion limit is refused as invalid gin (not a RecursionError traceback), and a
    huge line is shortened in the message."""
    deep = "train.lr = " + "[" * 5000 + "]" * 5000
    with pytest.raises(ArtifactError, match="not valid gin") as err:
        config.parse(base=deep + "\n", base_source="checkpoint /x/model.ckpt")
    assert "/x/model.ckpt" in str(err.value) and len(str(err.value)) < 1500, str(err.value)[:300]
    long = "import os  # " + "x" * 100_000
    with pytest.raises(ArtifactError, match="imports code") as err:
        config.parse(base=long + "\n", base_source="checkpoint /x/model.ckpt")
    assert "import os" in str(err.value) and len(str(err.value)) < 1500


def test_user_binding_too_deep_is_one_message():
    from audiogen.errors import ConfigError

    with pytest.raises(ConfigError, match="binding"):
        config.parse(bindings=["train.lr = " + "[" * 5000 + "]" * 5000])


def test_terminal_escapes_in_artifacts_are_shown_not_sent(tmp_path, dataset):
    """Text from an artifact (a source name, an operative config line) may hold terminal control sequences (clear
    the screen, rewrite the title, hide the text after them): `info` and error messages print them escaped."""
    from conftest import run_failing, run_here

    esc = "\x1b]0;owned\x07\x1b[2J"

    def edit(meta):
        meta["files"][0]["source"] = "relative" + esc + ".wav"
        meta["operative_config"] += "\n# " + esc + "\n"
        meta["failed"] = [{"source": "/x/y" + esc + ".wav", "reason": "bad" + esc}]

    import shutil

    ds = shutil.copytree(dataset, tmp_path / "esc")
    meta = json.loads((ds / "meta.json").read_text())
    edit(meta)
    (ds / "meta.json").write_text(json.dumps(meta))
    out = run_here("info", ds).output
    assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out, out
    msg = run_failing("decode", ds, "-o", tmp_path / "dec")
    assert "\x1b" not in msg and "\\x1b" in msg, msg


def test_checkpoint_config_naming_an_unrecorded_model_file_is_refused_before_loading(tmp_path, tiny_run, corpus):
    """A TorchScript file runs code when loaded: a checkpoint's stored config may name only the model file the
    checkpoint records (``encoder_info``); any other is refused before ``torch.jit.load`` sees it."""
    planted = tmp_path / "planted.ts"
    planted.write_text("not even TorchScript: loading it would fail with another message")
    text = f"pipeline.encoder = @encoders.rave()\nencoders.rave.model_path = '{planted}'\n"
    evil = _evil_checkpoint(tiny_run / "model.ckpt", tmp_path / "evil.ckpt", text)
    msg = _refused("encode", "--run", evil, corpus / "train.txt", "-o", tmp_path / "out")
    assert "records no model file" in msg and str(planted) in msg and "cannot" not in msg, msg


def test_checkpoint_whose_model_file_changed_is_refused(tmp_path, tiny_run, corpus, shared):
    """The checkpoint records the model file and its sha256: the same path with other contents is refused."""
    model = shared / "models" / "rave-v2small-librispeech16k.ts"
    ck = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=True)
    ck["audiogen"]["operative_config"] += (f"\npipeline.encoder = @encoders.rave()\npipeline.decoder = @decoders.rave()\n"
                                           f"encoders.rave.model_path = '{model}'\ndecoders.rave.model_path = '{model}'\n")
    ck["audiogen"]["encoder_info"] = {"model_path": str(model), "model_sha256": "0" * 64}
    torch.save(ck, tmp_path / "changed.ckpt")
    msg = _refused("encode", "--run", tmp_path / "changed.ckpt", corpus / "train.txt", "-o", tmp_path / "out")
    assert "has changed since checkpoint" in msg and str(model) in msg, msg
