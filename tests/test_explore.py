"""Latent tools: interpolation, trajectories and means of encodings, through the CLI and as functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_in_process

from audiogen.errors import ConfigError
from audiogen.workflows.explore import interpolate, mean_encoding, trajectory


def test_interpolation_ends_at_both_encodings():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 10)), rng.normal(size=(4, 12))
    for slerp in (False, True):
        items = interpolate(a, b, 5, spherical=slerp)
        assert len(items) == 5 and all(z.shape == (4, 10) for _, z in items)
        np.testing.assert_allclose(items[0][1], a, atol=1e-5)
        np.testing.assert_allclose(items[-1][1], b[:, :10], atol=1e-5)
    mid = interpolate(a, -a, 3, spherical=False)[1][1]
    np.testing.assert_allclose(mid, 0, atol=1e-6)


def test_trajectories_move_only_the_chosen_dimensions():
    base = np.zeros((4, 50), np.float32)
    scale = np.array([1, 2, 1, 1], np.float32)
    (_, circle), = trajectory("circle", base, [0, 1], 2.0, scale)
    np.testing.assert_allclose(np.hypot(circle[0] / 1, circle[1] / 2), 2.0, rtol=1e-5)
    assert not circle[2:].any()
    (_, line), = trajectory("line", base, [3], 1.0, scale)
    assert line[3, 0] == pytest.approx(-1) and line[3, -1] == pytest.approx(1) and not line[:3].any()
    grid = trajectory("grid", base, [0, 2], 1.0, scale, steps=3)
    assert len(grid) == 9
    with pytest.raises(ConfigError, match="needs 2 latent dimension"):
        trajectory("circle", base, [0], 1.0, scale)
    with pytest.raises(ConfigError, match="unknown trajectory"):
        trajectory("spiral", base, [0, 1], 1.0, scale)


def test_mean_of_encodings():
    (_, m), = mean_encoding([np.ones((2, 5)), 3 * np.ones((2, 7))])
    np.testing.assert_allclose(m, 2 * np.ones((2, 5)))


def test_explore_commands(tiny_run, corpus, tmp_path):
    files = sorted(corpus.rglob("*.wav"))
    run_in_process("explore", "interpolate", "--run", tiny_run, files[0], files[1], "--points", "3",
                   "-o", tmp_path / "i")
    assert len(list((tmp_path / "i").glob("interp_*.wav"))) == 3
    assert json.loads((tmp_path / "i" / "explore.json").read_text())["tool"] == "interpolate"
    run_in_process("explore", "mean", "--run", tiny_run, *files[:3], "-o", tmp_path / "m")
    assert (tmp_path / "m" / "mean.wav").exists()
    run_in_process("encode", "--run", tiny_run, corpus / "train.txt", "-o", tmp_path / "lat", "--no-progress")
    run_in_process("explore", "trajectory", "--run", tiny_run, "--shape", "grid", "--grid-points", "2",
                   "--stats-from", tmp_path / "lat", "--seconds", "0.2", "-o", tmp_path / "t")
    assert len(list((tmp_path / "t").glob("grid_*.wav"))) == 4
    run_in_process("decode", "--run", tiny_run, tmp_path / "t" / "grid_0_1.npy", "-o", tmp_path / "d")
    assert (tmp_path / "d" / "grid_0_1.wav").exists()
