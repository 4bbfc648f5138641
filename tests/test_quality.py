"""Fréchet distances (audiogen.quality): closed forms, the floor at equal sizes, the features. What `sample` and
`evaluate` write is checked on the two-stage run of tests/test_two_stage.py (no extra training here)."""

from __future__ import annotations

import numpy as np
import pytest

from audiogen import quality


def test_equal_sets_give_zero():
    x = np.random.default_rng(0).normal(size=(500, 6)) @ np.random.default_rng(1).normal(size=(6, 6))
    assert quality.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_shifted_means_give_the_squared_distance():
    x = np.random.default_rng(0).normal(size=(400, 5)) @ np.random.default_rng(1).normal(size=(5, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert quality.frechet_distance(x, x + shift) == pytest.approx((shift**2).sum(), rel=1e-9)


def test_diagonal_covariances_give_the_closed_form():
    s1, s2 = np.array([1.0, 4.0, 0.25, 9.0]), np.array([2.0, 1.0, 0.25, 0.01])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    want = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert quality.frechet_gaussians(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want, rel=1e-12)


def test_general_covariances_match_the_commuting_and_the_symmetric_forms():
    """tr((S1 S2)^1/2) for non-commuting S1, S2: the eigenvalues of S1 S2 are real and >= 0 (similar to the PSD
    R S2 R), so their square roots summed are the trace; also symmetric in its arguments."""
    g = np.random.default_rng(3)
    a, b = g.normal(size=(5, 5)), g.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu = np.zeros(5)
    want = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    assert quality.frechet_gaussians(mu, s1, mu, s2) == pytest.approx(want, rel=1e-9)
    assert quality.frechet_gaussians(mu, s2, mu, s1) == pytest.approx(want, rel=1e-9)


def test_rank_deficient_covariances_stay_finite_and_non_negative():
    x = np.random.default_rng(0).normal(size=(3, 10))  # 3 vectors in 10 dims: covariance of rank 2
    d = quality.frechet_distance(x, x[::-1] + 1e-3)
    assert np.isfinite(d) and d >= 0


def test_compare_uses_equal_sizes_and_reports_the_floor():
    g = np.random.default_rng(0)
    held = g.normal(size=(1000, 4))
    same = quality.compare(g.normal(size=(300, 4)), held)
    assert same["vectors"] == 300 and same["dims"] == 4 and not same["biased"]
    assert 0.2 < same["ratio"] < 5  # same distribution: distance of the order of the floor
    off = quality.compare(g.normal(size=(300, 4)) * 2 + 1, held)
    assert off["ratio"] > 20 and off["floor"] == pytest.approx(same["floor"])  # same seed, same halves
    few = quality.compare(g.normal(size=(900, 4)), held[:100])
    assert few["vectors"] == 50  # half of the held-out vectors per side, generated subsampled to match
    assert quality.compare(g.normal(size=(1, 4)), held)["distance"] is None


def test_latent_windows_flatten_consecutive_frames_time_major():
    z = np.arange(2 * 9).reshape(2, 9).astype(float)  # C=2, L=9: windows of 4 -> 2 windows, tail of 1 dropped
    w = quality.latent_windows([z], 4)
    assert w.shape == (2, 8)
    assert w[0].tolist() == [0, 9, 1, 10, 2, 11, 3, 12]


def test_mel_frames_reuse_the_probe_log_mel():
    from audiogen.probe import log_mel

    a = np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1
    m = quality.mel_frames([a], 16000)
    assert m.shape[1] == quality.N_MELS
    assert np.allclose(m, log_mel(a, 16000, 256, quality.N_MELS).T)


def test_held_out_takes_whole_files_in_seeded_order_up_to_the_frames_asked(tmp_path):
    from audiogen.latents.sequences import open_sequences

    g = np.random.default_rng(0)
    for k, n in enumerate([30, 7, 50, 12]):
        np.save(tmp_path / f"s{k}.npy", g.normal(size=(n, 3)).astype(np.float32))
    ds = open_sequences(tmp_path)
    h = quality.held_out(ds, 40, seed=1)
    assert h["frames"] == 40 == sum(z.shape[1] for z in h["latents"]) and h["audio"] is None
    assert all(z.shape[0] == 3 for z in h["latents"]) and len(h["files"]) == len(h["latents"])
    assert quality.held_out(ds, 40, seed=1)["files"] == h["files"]  # seeded
    assert quality.held_out(ds, 10_000, seed=1)["frames"] == 99  # all there is
