"""Test kit for plugin authors: pytest fixtures for a tiny corpus, a tiny latent dataset and in-process CLI runs.

Enable it in your plugin's ``tests/conftest.py`` (``audiogen plugins new`` writes this for you)::

    pytest_plugins = ["audiogen.testing"]

Fixtures (the data ones are built once per test session, in a few seconds on one CPU core):

- ``audiogen_cli``: ``audiogen_cli("train-prior", "--gin", ..., check=True) -> CliResult(exit_code, output,
  stdout, stderr)``; runs a command in this process (no interpreter start-up), with audiogen's warnings in
  ``stderr``. ``check=True`` (the default) fails the test, showing the output, when the exit code is not 0.
- ``audiogen_corpus``: a folder of synthesised speech-like wav files (16 kHz, 0.4 to 0.8 s) with ``train.txt``
  and ``valid.txt`` lists.
- ``audiogen_autoencoder``: a tiny conv autoencoder (latent size ``TINY_LATENT_SIZE``, hop 16) trained for two
  steps on that corpus: a run folder for ``encode --run`` / ``decode --run``.
- ``audiogen_latents``: that corpus encoded by that autoencoder: a latent dataset (``LatentData``: usable as a path,
  with ``.latent_size``) that ``train-prior`` takes and whose samples ``sample`` decodes.

Only functions and fixtures here; importing this module does not import torch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

TINY_LATENT_SIZE = 4
# A conv autoencoder small enough that two training steps take well under a second.
TINY_AUTOENCODER = ["STRIDES=[4, 4]", "CHANNELS=[8, 16]", f"LATENT_SIZE={TINY_LATENT_SIZE}", "train.max_steps=2",
                    "train.batch_size=2", "train.crop_seconds=0.1", "train.val_every=1", "train.log_every=1"]


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    output: str  # stdout and stderr, interleaved
    stdout: str
    stderr: str


@dataclass(frozen=True)
class LatentData:
    """A latent dataset folder; pass it where a path goes (``os.fspath``, ``str``)."""

    path: Path
    latent_size: int

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


class _EchoHandler(logging.Handler):
    """audiogen's log lines as the console script prints them, on the stderr the runner captures."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"audiogen: {record.levelname}: {record.getMessage()}", err=True)


def run_cli(*args, check: bool = True) -> CliResult:
    """Run ``audiogen ARGS`` in this process, as the console script would (exit code 2 and one message for a user
    error). gin bindings are cleared before and after, so commands do not configure each other."""
    import gin
    from click.testing import CliRunner

    from audiogen import plugins
    from audiogen.cli import cli

    argv = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    log = logging.getLogger("audiogen")
    handler = _EchoHandler(logging.INFO)
    log.addHandler(handler)
    gin.clear_config()
    # plugins load once per process: replay their load-time warnings (a skipped plugin, a refused name), which the
    # console script prints on every run, so each command's stderr holds them
    replay = list(plugins._STATE[0].logged) if plugins._STATE is not None else []
    try:
        res = CliRunner().invoke(cli, argv, catch_exceptions=True, prog_name="audiogen")
    finally:
        gin.clear_config()
        log.removeHandler(handler)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a bug, not a user error: show its traceback
    head = "".join(f"audiogen: WARNING: {msg}\n" for msg in replay)
    out = CliResult(res.exit_code, head + res.output, res.stdout, head + res.stderr)
    if check and out.exit_code != 0:
        pytest.fail(f"audiogen {' '.join(argv)} exited {out.exit_code}\n{out.output}", pytrace=False)
    return out


@pytest.fixture
def audiogen_cli():
    """``audiogen_cli(*args, check=True) -> CliResult``: an audiogen command run in this process."""
    return run_cli


@pytest.fixture(scope="session")
def audiogen_corpus(tmp_path_factory) -> Path:
    """Synthesised speech-like wavs (2 speakers x 3 utterances, 16 kHz) with train.txt and valid.txt."""
    from audiogen.synth import write_corpus

    folder = tmp_path_factory.mktemp("audiogen_corpus")
    write_corpus(folder, n_speakers=2, utterances_per_speaker=3, seconds=(0.4, 0.8), seed=1)
    return folder


@pytest.fixture(scope="session")
def audiogen_autoencoder(tmp_path_factory, audiogen_corpus) -> Path:
    """A run folder: a tiny conv autoencoder trained for two steps on ``audiogen_corpus``."""
    run = tmp_path_factory.mktemp("audiogen_autoencoder")
    binds = [arg for b in TINY_AUTOENCODER for arg in ("--bind", b)]
    run_cli("train", "--gin", "pipelines/conv_ae.gin", *binds, audiogen_corpus / "train.txt",
            "--valid", audiogen_corpus / "valid.txt", "-o", run, "--no-progress")
    return run


@pytest.fixture(scope="session")
def audiogen_latents(tmp_path_factory, audiogen_corpus, audiogen_autoencoder) -> LatentData:
    """``audiogen_corpus`` encoded by ``audiogen_autoencoder``: a latent dataset for ``train-prior``."""
    out = tmp_path_factory.mktemp("audiogen_latents") / "latents"
    run_cli("encode", "--run", audiogen_autoencoder, audiogen_corpus / "train.txt", "-o", out, "--no-progress")
    return LatentData(out, TINY_LATENT_SIZE)
