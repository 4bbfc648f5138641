"""The example third-party plugin (plugins/audiogen-example): pip-installed, then used through the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = ROOT / "plugins" / "audiogen-example"
VERSION = tomllib.loads((PLUGIN_SRC / "pyproject.toml").read_text())["project"]["version"]  # the plugin's own
SR = 16000


def _cli_prefix() -> list[str]:
    # audiogen.cli has no `if __name__ == "__main__"` guard, so `python -m audiogen.cli` would do nothing:
    # run the console script installed beside this interpreter (or call main() explicitly).
    exe = Path(sys.executable).with_name("audiogen")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from audiogen.cli import main; main()"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The plugin pip-installed (no deps, offline) into a private target folder, for PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("example_plugin")
    src = tmp / "src"  # build from a copy: setuptools leaves build/ and *.egg-info beside the sources
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
           "--disable-pip-version-check", "--no-cache-dir", "--target", str(target)]
    if importlib.util.find_spec("setuptools") is not None:
        cmd.append("--no-build-isolation")  # build with the installed setuptools: no download needed
    proc = subprocess.run(cmd + [str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    assert (target / "audiogen_example" / "gin" / "example" / "log_mel.gin").is_file(), "gin files not shipped"
    return target


@pytest.fixture(scope="module")
def LogMel(site):  # noqa: N802 - it is the class
    """``LogMelEncoder`` imported from the installed copy. The folder is on sys.path only for the import, so
    plugin discovery in this process (other test files) never sees the example plugin."""
    sys.path.insert(0, str(site))
    try:
        from audiogen_example.log_mel import LogMelEncoder
    finally:
        sys.path.remove(str(site))
    assert Path(sys.modules[LogMelEncoder.__module__].__file__).is_relative_to(site)  # not a stray copy
    return LogMelEncoder


def run_cli(site: Path, *args, plugins: str = "example", check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["AUDIOGEN_PLUGINS"] = plugins  # only the example: other installed plugins stay out of tests
    proc = subprocess.run(_cli_prefix() + [str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"audiogen {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def _encoder_line(stdout: str, name: str) -> str | None:
    section = stdout.split("\nencoders:", 1)[1].split("\ndecoders:", 1)[0]
    return next((ln for ln in section.splitlines() if ln.split()[:1] == [name]), None)


# --------------------------------------------------------------------------------------------------- via the CLI
def test_plugins_lists_log_mel(site):
    out = run_cli(site, "plugins").stdout
    assert f"example {VERSION}" in out.splitlines()[0]
    line = _encoder_line(out, "log_mel")
    assert line is not None, out
    assert line.split()[1:3] == ["example", VERSION]
    assert "log-mel" in line  # the class docstring's first line is the summary


def test_plugins_json(site):
    d = json.loads(run_cli(site, "plugins", "--json").stdout)
    assert d["plugins"]["example"] == VERSION
    assert d["components"]["encoders"]["log_mel"] == {"plugin": "example", "version": VERSION,
                                                      "gin": "encoders.log_mel"}
    assert any(p == "example" and d_.endswith(os.path.join("audiogen_example", "gin"))
               for p, d_ in d["config_dirs"])
    assert not d["failures"] and not d["conflicts"]


def test_plugin_command(site):
    out = run_cli(site, "example-hello").stdout
    assert f"audiogen-example {VERSION}" in out
    assert "encoders.log_mel" in out


def test_configs_lists_plugin_gin(site):
    out = run_cli(site, "configs").stdout
    line = next((ln for ln in out.splitlines() if ln.split()[:1] == ["example/log_mel.gin"]), None)
    assert line is not None, out
    assert str(site) in line  # resolved inside the installed package


def _write_wavs(folder: Path, seconds=(0.5, 0.33, 1.0)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, s in enumerate(seconds):
        n = int(round(s * SR))
        t = np.arange(n) / SR
        x = 0.4 * np.sin(2 * np.pi * (200 + 300 * i) * t) + 0.05 * rng.standard_normal(n)
        p = folder / f"clip{i}.wav"
        sf.write(p, x.astype(np.float32), SR, subtype="PCM_16")
        paths.append(p)
    return paths


def test_encode_with_plugin_config(site, LogMel, tmp_path):
    wavs = _write_wavs(tmp_path / "wavs")
    out = tmp_path / "latents"
    proc = run_cli(site, "encode", "--gin", "example/log_mel.gin", *wavs, "-o", out, "--no-progress")
    assert "encoded 3 files" in proc.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["encoder"]["name"] == "encoders.log_mel"
    assert meta["encoder"]["plugin"] == "example" and meta["encoder"]["version"] == VERSION
    assert meta["checkpoint"] is None
    assert (meta["latent_size"], meta["hop"], meta["sample_rate"]) == (64, 256, 16000)
    # gin writes the shortest unambiguous selector (log_mel.n_mels while no other kind has a log_mel)
    assert re.search(r"^(encoders\.)?log_mel\.n_mels = 64$", meta["operative_config"], re.M), meta["operative_config"]
    by_source = {Path(e["source"]).name: e for e in meta["files"]}
    assert set(by_source) == {p.name for p in wavs}
    for p in wavs:
        n = sf.info(str(p)).frames
        e = by_source[p.name]
        assert e["samples"] == n
        assert e["length"] == math.ceil(n / 256), (p.name, n, e)
    assert meta["total_frames"] == sum(e["length"] for e in meta["files"])
    shards = [np.load(out / "shards" / s["name"]) for s in meta["shards"]]
    data = np.concatenate(shards)
    assert data.shape == (meta["total_frames"], 64) and np.isfinite(data).all()
    # the same numbers as the encoder run in-process on the file
    x, _ = sf.read(str(wavs[0]), dtype="float32")
    want = LogMel()(torch.from_numpy(x)[None, None])[0].T.numpy()
    e = by_source["clip0.wav"]
    got = data[e["offset"]: e["offset"] + e["length"]]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_empty_allow_list_hides_the_plugin(site):
    # (each CLI start imports torch, ~2 s: one --json call checks components, plugins and config folders)
    d = json.loads(run_cli(site, "plugins", "--json", plugins="").stdout)
    assert "example" not in d["plugins"]
    assert "log_mel" not in d["components"]["encoders"]
    assert "conv1d" in d["components"]["encoders"]  # built-ins always load
    assert not any(p == "example" for p, _ in d["config_dirs"])
    assert not d["failures"] and not d["conflicts"]
    help_text = run_cli(site, "--help", plugins="").stdout  # the CLI still works, without the plugin's command
    assert "encode" in help_text and "example-hello" not in help_text


def test_allow_list_naming_it_keeps_it(site):
    d = json.loads(run_cli(site, "plugins", "--json", plugins="example").stdout)
    assert d["plugins"]["example"] == VERSION
    assert d["components"]["encoders"]["log_mel"]["plugin"] == "example"
    assert any(p == "example" for p, _ in d["config_dirs"])


# ------------------------------------------------------------------------------------------------- in-process unit
def test_contract(LogMel):
    from audiogen.contracts import check_encoder

    enc = LogMel()
    assert (enc.hop, enc.latent_size, enc.sample_rate, enc.receptive_field) == (256, 64, 16000, 1024)
    assert enc.pretrained is True
    assert sum(p.numel() for p in enc.parameters()) == 0
    assert enc.state_dict() == {}  # nothing to save in a checkpoint
    check_encoder(enc)
    check_encoder(enc, num_samples=100)  # shorter than the window
    check_encoder(LogMel(n_fft=512, hop=128, n_mels=40, f_min=50.0, f_max=7000.0), num_samples=3001)
    for t in (1, 255, 256, 257, 16000):
        assert enc(torch.zeros(1, 1, t)).shape == (1, 64, math.ceil(t / 256))


def test_chunked_encoding_equals_whole(LogMel):
    from audiogen.latents.encode import encode_array

    enc = LogMel()
    x = (np.random.default_rng(1).standard_normal(10_000) * 0.3).astype(np.float32)
    whole = encode_array(enc, lambda a, b: x[a:b], len(x), chunk=10**9)
    chunked = encode_array(enc, lambda a, b: x[a:b], len(x), chunk=1000)
    assert whole.shape == (math.ceil(len(x) / 256), 64)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_tone_peaks_in_its_mel_band(LogMel):
    enc = LogMel()
    # HTK mel, computed here independently of the plugin: band k peaks at the (k + 1)-th of n_mels + 2 points
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    centres = 700 * (10 ** (np.linspace(mel(0), mel(SR / 2), 64 + 2)[1:-1] / 2595) - 1)
    for freq in (1000.0, 3000.0):
        t = np.arange(SR) / SR
        x = torch.from_numpy((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))[None, None]
        z = enc(x)[0]  # (64, frames)
        band = int(z[:, 4:-4].mean(dim=1).argmax())  # away from the zero-padded edges
        assert band == int(np.argmin(np.abs(centres - freq))), (freq, band, centres[band])
    np.testing.assert_allclose(enc.center_frequencies.numpy(), centres, rtol=1e-4)
    # silence sits on the log floor
    assert torch.allclose(enc(torch.zeros(1, 1, 2048)), torch.tensor(math.log(1e-5)))


# ------------------------------------------------------------------------------ the template and the plugin's tests
def test_example_is_the_template_written_as_example():
    """plugins/audiogen-example = `audiogen plugins new example` + more components: they cannot drift apart."""
    from audiogen.plugin_template import KEEP, MARKER, render

    for rel, text in render("example").items():
        if rel in KEEP:
            continue
        have = (PLUGIN_SRC / rel).read_text()
        if MARKER in have:
            have = have[: have.index(MARKER)].rstrip("\n") + "\n"
        assert have == text, f"{rel} differs from the template: run python -m audiogen.plugin_template example " \
                             f"plugins/audiogen-example"


def test_plugins_new_writes_a_plugin_that_loads_and_meets_its_contract(tmp_path):
    import tomllib

    from audiogen.contracts import check_prior
    from audiogen.testing import run_cli as run_in_process

    res = run_in_process("plugins", "new", "my_gru", "-o", tmp_path / "audiogen-my-gru")
    assert "wrote plugin 'my_gru'" in res.stdout
    pkg = tmp_path / "audiogen-my-gru"
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "audiogen-my-gru"
    assert meta["project"]["entry-points"]["audiogen"] == {"my_gru": "audiogen_my_gru.plugin"}
    assert (pkg / "audiogen_my_gru" / "gin" / "my_gru" / "gru_prior.gin").read_text().count("priors.my_gru_gru") == 3
    sys.path.insert(0, str(pkg))
    try:
        from audiogen_my_gru.gru_prior import GRUPrior
        from audiogen_my_gru.plugin import register_priors
    finally:
        sys.path.remove(str(pkg))
    got = []
    register_priors(lambda name, factory: got.append((name, factory)))
    assert got == [("my_gru_gru", GRUPrior)]
    check_prior(GRUPrior(latent_size=3, hidden_size=8))
    bad = run_in_process("plugins", "new", "MyGru", "-o", tmp_path / "x", check=False)
    assert bad.exit_code == 2 and "'my_gru'" in bad.stderr and not (tmp_path / "x").exists()
    again = run_in_process("plugins", "new", "my_gru", "-o", pkg, check=False)
    assert again.exit_code == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_the_example_plugins_own_tests_pass_with_the_kit(site, tmp_path):
    """What a plugin author runs: the example's tests (the template's, plus its schedule's) against the installed
    plugin, with audiogen.testing's fixtures, in a fresh interpreter."""
    src = tmp_path / "src"
    shutil.copytree(PLUGIN_SRC / "tests", src / "tests")
    env = dict(os.environ, AUDIOGEN_PLUGINS="example", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(src),
                           str(src / "tests")], capture_output=True, text=True, env=env, cwd=src, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout
