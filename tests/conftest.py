"""Shared fixtures. Real data lives in ../shared beside the project root, or where AUDIOGEN_SHARED points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

# Installed third-party plugins stay out of the project's own tests (a user's broken plugin must not break pytest;
# console scripts started by tests inherit this too). A test that installs a plugin opts in by naming it:
# env={"AUDIOGEN_PLUGINS": "its_name"} (or monkeypatch.setenv). Set before audiogen builds its registry.
os.environ["AUDIOGEN_PLUGINS"] = ""

# In-process models in tests are tiny: one thread avoids OpenMP contention on a busy 2-core machine.
torch.set_num_threads(1)

# The plugin authors' test kit (audiogen_cli, audiogen_corpus, audiogen_latents, ...), tested as they use it.
pytest_plugins = ["audiogen.testing"]

ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "AUDIOGEN_SHARED"


def shared_dir() -> Path:
    return Path(os.environ.get(SHARED_ENV, ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder. Missing: skipped locally with the reason, but a failure under CI (CI=true)."""
    d = shared_dir()
    if not (d / "data").is_dir():
        msg = f"shared data not found at {d}; set {SHARED_ENV} to the folder holding data/ and models/"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return d


def audiogen_exe() -> list[str]:
    exe = Path(sys.executable).with_name("audiogen")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("audiogen")
    assert found, "the audiogen console script is not installed"
    return [found]


def run_cli(*args, env=None, cwd=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    """Run the installed `audiogen` console script as a user would. An ``env`` value of None unsets it."""
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    proc = subprocess.run(audiogen_exe() + [str(a) for a in args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"audiogen {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def cli_main(*args) -> None:
    """The command in-process through click's own entry (standalone_mode=False): a user error raises the
    ClickException the console script would print, any other error its own traceback."""
    from audiogen.cli import cli

    cli.main(args=[str(a) for a in args], prog_name="audiogen", standalone_mode=False)


def refused(*args) -> str:
    """The message of a command that must fail the way the CLI reports user errors: exit code 2, no traceback."""
    import click

    with pytest.raises(click.ClickException) as err:
        cli_main(*args)
    assert err.value.exit_code == 2
    return err.value.message


def run_in_process(*args, check=True) -> subprocess.CompletedProcess:
    """``run_cli`` without the interpreter start-up: the command runs in this process (audiogen.testing.run_cli, the
    console script's stdout, stderr and exit code 2 for a user error; a bug raises here with its traceback). For
    tests of what a command does, not of the installed console script."""
    from audiogen.testing import run_cli as run_cli_here

    res = run_cli_here(*args, check=check)
    return subprocess.CompletedProcess(["audiogen", *map(str, args)], res.exit_code, res.stdout, res.stderr)


def run_here(*args):
    """Run an `audiogen` command in this process (CliRunner): the same code path as the console script without
    an interpreter start-up (about 2.5 s each), for suites that run dozens of short commands."""
    import gin
    from click.testing import CliRunner

    from audiogen.cli import cli

    gin.clear_config()
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    gin.clear_config()
    if res.exit_code != 0:
        raise AssertionError(f"audiogen {' '.join(map(str, args))} exited {res.exit_code}\n{res.output}")
    return res


def run_failing(*args) -> str:
    """Run an `audiogen` command in this process that must fail the way the CLI reports user errors: exit code 2,
    no traceback (catch_exceptions=False: any other exception fails the test with its own traceback). Returns the
    output (stdout and stderr)."""
    import gin
    from click.testing import CliRunner

    from audiogen.cli import cli

    gin.clear_config()
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    gin.clear_config()
    assert res.exit_code == 2, f"audiogen {' '.join(map(str, args))} exited {res.exit_code}\n{res.output}"
    assert "Traceback" not in res.output
    return res.output


def write_tone(path: Path, seconds: float = 0.5, sr: int = 16000, freq: float = 440.0, channels: int = 1,
               subtype: str = "PCM_16") -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return path


# Tiny sizes so a train step takes milliseconds; shared by the tests that build the conv autoencoder.
TINY = ["STRIDES=[4, 4]", "CHANNELS=[8, 16]", "LATENT_SIZE=4", "train.max_steps=2", "train.batch_size=2",
        "train.crop_seconds=0.1", "train.val_every=1", "train.log_every=1"]


def tiny_binds() -> list[str]:
    out = []
    for b in TINY:
        out += ["--bind", b]
    return out


@pytest.fixture(scope="session")
def corpus(audiogen_corpus) -> Path:
    """A small synthetic speech-like corpus made by the project itself (the test kit's, made once per session)."""
    return audiogen_corpus


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, corpus) -> Path:
    """A tiny conv autoencoder trained for 2 steps through the CLI: a checkpoint for encode/decode tests."""
    run = tmp_path_factory.mktemp("run")
    run_cli("train", "--gin", "pipelines/conv_ae.gin", *tiny_binds(), corpus / "train.txt",
            "--valid", corpus / "valid.txt", "-o", run, "--no-progress")
    return run


@pytest.fixture(autouse=True)
def _fresh_gin():
    """Bindings parsed by one test must not configure objects built by the next."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()
