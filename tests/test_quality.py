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
    a, b = g.normal(size=(500, 4)), g.normal(size=(500, 4))
    same = quality.compare(g.normal(size=(300, 4)), a, b)
    assert same["vectors"] == 300 and same["dims"] == 4 and not same["biased"]
    assert 0.2 < same["ratio"] < 5  # same distribution: distance of the order of the floor
    off = quality.compare(g.normal(size=(300, 4)) * 2 + 1, a, b)
    assert off["ratio"] > 20 and off["floor"] == pytest.approx(same["floor"])  # same seed, same vectors
    few = quality.compare(g.normal(size=(900, 4)), a[:50], b)
    assert few["vectors"] == 50  # the smallest side sets the count everywhere
    assert quality.compare(g.normal(size=(1, 4)), a, b)["distance"] is None


def test_latent_windows_flatten_consecutive_frames_time_major():
    z = np.arange(2 * 9).reshape(2, 9).astype(float)  # C=2, L=9: windows of 4 -> 2 windows, tail of 1 dropped
    w = quality.latent_windows([z], 4)
    assert w.shape == (2, 8)
    assert w[0].tolist() == [0, 9, 1, 10, 2, 11, 3, 12]


def test_mel_frames_reuse_the_probe_log_mel():
    from audiogen.audio.mel import log_mel

    a = np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1
    m = quality.mel_frames([a], 16000)
    assert m.shape[1] == quality.N_MELS
    assert np.allclose(m, log_mel(a, 16000, 256, quality.N_MELS).T)


def test_held_out_halves_come_from_disjoint_files_spread_over_as_many_as_possible(tmp_path):
    from audiogen.latents.sequences import open_sequences

    g = np.random.default_rng(0)
    for k, n in enumerate([30, 7, 50, 12, 25, 3]):
        np.save(tmp_path / f"s{k}.npy", g.normal(size=(n, 3)).astype(np.float32))
    ds = open_sequences(tmp_path)
    h = quality.held_out(ds, 4, 5, seed=1)
    a, b = h["halves"]
    assert not set(a["files"]) & set(b["files"]) and a["audio"] is None
    assert all(z.shape == (3, 5) for half in (a, b) for z in half["latents"])
    assert len(a["files"]) == min(4, sum(ds.files[i]["length"] >= 5 for i in np.random.default_rng(1).permutation(6)[0::2]))
    assert quality.held_out(ds, 4, 5, seed=1)["files"] == h["files"]  # seeded
    assert sum(quality.held_out(ds, 1000, 5, seed=1)["crops"]) == sum(n // 5 for n in [30, 7, 50, 12, 25, 3])


def test_a_split_by_files_keeps_the_floor_honest(tmp_path):
    """Slowly varying sequences (like latents, one offset per file like a speaker): halves that shared files would
    agree far better than independent sequences can; with disjoint files, new sequences of the same process score
    about the floor."""
    from audiogen.latents.sequences import open_sequences

    g = np.random.default_rng(0)

    def seqs(k):  # (C=2, L=200) each
        return [np.cumsum(g.normal(size=(2, 200)), 1) * 0.05 + g.normal(size=(2, 1)) for _ in range(k)]

    for k, z in enumerate(seqs(40)):
        np.save(tmp_path / f"f{k:02d}.npy", z.T.astype(np.float32))
    held = quality.held_out(open_sequences(tmp_path), 60, 20, seed=0)
    fresh = [z[:, :20] for z in seqs(60)]
    r = quality.measure(fresh, held, window=2)["latent"]
    assert 0.3 < r["ratio"] < 3, r
    # the same crops split by vectors instead of by files: a floor far below what independent data scores
    v = quality.latent_windows(held["halves"][0]["latents"] + held["halves"][1]["latents"], 2)
    perm = np.random.default_rng(0).permutation(len(v))
    by_vectors = quality.compare(quality.latent_windows(fresh, 2), v[perm[::2]], v[perm[1::2]])
    assert by_vectors["floor"] < 0.2 * r["floor"] and by_vectors["ratio"] > 5  # 0.019 vs 0.58, ratio 16.5 here


def test_summary_line_names_counts_floor_and_bias():
    g = np.random.default_rng(0)
    q = {"latent": quality.compare(g.normal(size=(20, 8)), g.normal(size=(20, 8)), g.normal(size=(20, 8))),
         "log_mel": quality.compare(g.normal(size=(1, 4)), g.normal(size=(5, 4)), g.normal(size=(5, 4)))}
    line = quality.summary(q, "the prior's dataset")
    assert line.startswith("Fréchet distance to the prior's dataset: latent windows ")
    assert "20 vectors of 8, under 10 per dimension: biased" in line and "log-mel: too few vectors" in line


def test_splits_repartition_the_same_crops_decoded_once(tmp_path):
    from audiogen.latents.sequences import open_sequences

    g = np.random.default_rng(0)
    for k in range(12):
        np.save(tmp_path / f"f{k:02d}.npy", g.normal(size=(int(g.integers(10, 40)), 3)).astype(np.float32))
    ds = open_sequences(tmp_path)
    decoded = []

    def dec(z):  # (1, C, L) -> (1, 1, samples): a stand-in decoder that counts its calls
        decoded.append(z)
        return z.sum(1, keepdim=True).repeat_interleave(8, -1)

    h = quality.held_out(ds, 10, 5, seed=3, dec=dec, splits=4)
    assert len(h["splits"]) == 4 and h["splits"][0]["halves"] is h["halves"]
    crops = {id(z) for z in h["halves"][0]["latents"] + h["halves"][1]["latents"]}
    assert len(decoded) == len(crops) == sum(h["crops"])  # every crop decoded once, whatever the splits
    for sp in h["splits"]:
        a, b = sp["halves"]
        assert not set(a["files"]) & set(b["files"])
        assert {id(z) for z in a["latents"] + b["latents"]} == crops  # the same crops, other sides
        assert len(a["audio"]) == len(a["latents"])
    assert len({tuple(sp["halves"][0]["files"]) for sp in h["splits"]}) > 1
    fresh = [g.normal(size=(3, 5)) for _ in range(10)]
    r = quality.measure(fresh, h, window=1)["latent"]
    per = [quality.compare(quality.latent_windows(fresh, 1), quality.latent_windows(sp["halves"][0]["latents"], 1),
                           quality.latent_windows(sp["halves"][1]["latents"], 1)) for sp in h["splits"]]
    assert r["splits"] == 4 and np.isclose(r["distance"], np.mean([p["distance"] for p in per]))
    assert np.isclose(r["ratio"], r["distance"] / np.mean([p["floor"] for p in per]))
    assert r["ratio_range"] == [min(p["ratio"] for p in per), max(p["ratio"] for p in per)]


def test_averaging_over_splits_steadies_the_ratio_across_seeds(tmp_path):
    """One offset per file (a speaker): which files land in which half moves a single split's floor; the ratio
    averaged over splits varies less from one evaluation seed to the next."""
    from audiogen.latents.sequences import open_sequences

    g = np.random.default_rng(0)
    for k in range(16):
        z = g.normal(size=(60, 2)) * 0.3 + g.normal(size=(1, 2))
        np.save(tmp_path / f"f{k:02d}.npy", z.astype(np.float32))
    ds = open_sequences(tmp_path)
    fresh = [g.normal(size=(2, 10)) * 0.3 + g.normal(size=(2, 1)) for _ in range(48)]

    def spread(splits):
        r = [quality.measure(fresh, quality.held_out(ds, 48, 10, seed, splits=splits), window=1)["latent"]["ratio"]
             for seed in range(8)]
        return np.std(np.log(r))

    assert spread(8) < 0.6 * spread(1), (spread(8), spread(1))
