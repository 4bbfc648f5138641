"""Priors over vector sequences: .npy datasets with masks, pen strokes through `audiogen train-prior`/`sample`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_here, run_in_process

from audiogen.contracts import check_prior
from audiogen.distributions import Bernoulli, GaussianMixture
from audiogen.errors import ArtifactError
from audiogen.latents.sequences import NpySequences, open_sequences
from audiogen.priors.sequence import SequencePrior
from audiogen.priors.temporal.cwvae import ClockworkVAE
from audiogen.priors.temporal.lstm import LSTMModel
from audiogen.priors.temporal.srnn import SRNN
from audiogen.priors.temporal.vrnn import VRNN
from audiogen.priors.temporal.wavenet import WaveNet
from audiogen.synth import write_stroke_corpus

MODELS = {
    "vrnn": lambda: VRNN(8, 4, 16, context_size=16),
    "srnn": lambda: SRNN(8, 4, 16, context_size=16),
    "lstm": lambda: LSTMModel(8, 16, context_size=16),
    "wavenet": lambda: WaveNet(8, 8, layers=2, blocks=2, context_size=16),
    "cwvae": lambda: ClockworkVAE(levels=2, ratio=2, latent_size=4, hidden_size=16, input_size=8, context_size=16),
}


@pytest.mark.parametrize("name", MODELS)
def test_sequence_prior_contract(name):
    torch.manual_seed(0)
    prior = SequencePrior(5, MODELS[name](), [GaussianMixture(3), Bernoulli()], [4, 1])
    out = check_prior(prior, length=8)
    assert out.is_bound == (name not in ("lstm", "wavenet"))
    s = prior.sample(3, 7)
    assert s.shape == (3, 5, 7) and set(s[:, 4].unique().tolist()) <= {0.0, 1.0}
    assert prior.fixed_dims == [4]


@pytest.mark.parametrize("name", MODELS)
def test_temperature_scales_every_noise_draw(name):
    """0: no noise anywhere (latent z, component choice, output draw, pen flag), so the seed changes nothing;
    1: the plain draw, the same numbers as without the option; in between: less spread than at 1."""
    torch.manual_seed(0)
    prior = SequencePrior(5, MODELS[name](), [GaussianMixture(3), Bernoulli()], [4, 1]).eval()

    def draw(seed, n=3, **kw):
        torch.manual_seed(seed)
        return prior.sample(n, 8, **kw)

    assert torch.equal(draw(1, temperature=0.0), draw(2, temperature=0.0))
    assert torch.equal(draw(1), draw(1, temperature=1.0)) and not torch.equal(draw(1), draw(2))
    spread = [draw(3, n=200, temperature=t)[:, :4].std(0).mean() for t in (0.5, 1.0)]
    assert spread[0] < 0.8 * spread[1]


def test_temperature_refused_where_undefined(tiny_run, tmp_path):
    """A prior or output distribution without a temperature, or a temporal VAE run: a clear error, not a silent
    plain draw."""
    from audiogen.distributions.discretized import DiscretizedMixture
    from audiogen.errors import ConfigError
    from audiogen.priors.diffwave import DiffWavePrior
    from audiogen.workflows.sample import generate

    with pytest.raises(ConfigError, match="DiscretizedMixture has none"):
        SequencePrior(1, MODELS["lstm"](), [DiscretizedMixture(2)]).sample(1, 4, temperature=0.5)
    diffwave = DiffWavePrior(latent_size=2, residual_layers=1, residual_channels=4)
    with pytest.raises(ConfigError, match="DiffWavePrior has no sampling temperature"):
        generate(diffwave, None, 1, 4, 0, temperature=0.5)
    res = run_in_process("sample", "--run", tiny_run, "--temperature", "0.5", "-o", tmp_path / "s", check=False)
    assert res.returncode == 2 and "applies to prior runs" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "s").exists()


def test_dims_must_match_distributions():
    with pytest.raises(ValueError, match="summing to latent_size 5"):
        SequencePrior(5, MODELS["lstm"](), [GaussianMixture(3), Bernoulli()], [3, 1])


def test_npy_sequences_stats_masks_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(2.0, 3.0, (n, 3)).astype(np.float32) for n in (5, 9, 7)]
    for i, a in enumerate(arrays):
        np.save(tmp_path / f"s{i}.npy", a)
    ds = open_sequences(tmp_path, normalize=True)
    assert isinstance(ds, NpySequences) and ds.latent_size == 3 and len(ds) == 3 and ds.lengths == [5, 9, 7]
    allx = np.concatenate(arrays)
    np.testing.assert_allclose(ds.mean, allx.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ds.std, allx.std(0), rtol=1e-5)
    item = ds[1]
    torch.testing.assert_close(ds.denormalize(item["latents"]), torch.from_numpy(arrays[1].T), rtol=1e-5, atol=1e-5)
    np.save(tmp_path / "s3.npy", rng.normal(size=(4, 2)))
    with pytest.raises(ArtifactError, match="s3.npy has 2 dimensions"):
        open_sequences(tmp_path)
    (tmp_path / "s3.npy").unlink()
    bad = arrays[0].copy()
    bad[2, 1] = np.nan
    np.save(tmp_path / "s4.npy", bad)
    with pytest.raises(ArtifactError, match="s4.npy contains NaN"):
        open_sequences(tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        open_sequences(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no .npy files"):
        open_sequences(tmp_path / "empty")


def test_strokes_train_prior_and_sample(tmp_path):
    """The seed's handwriting setup: a VRNN with a Gaussian mixture over pen offsets and a Bernoulli pen-up."""
    write_stroke_corpus(tmp_path / "strokes", n=12, seed=0)
    run = tmp_path / "run"
    run_in_process("train-prior", "--gin", "pipelines/vrnn_strokes.gin", tmp_path / "strokes", "-o", run, "--no-progress",
                   "--bind", "DZ=4", "--bind", "HIDDEN=16", "--bind", "MIXTURE=2", "--bind", "train.max_steps=20",
                   "--bind", "train.batch_size=4", "--bind", "train.log_every=1")
    ck = torch.load(run / "model.ckpt", map_location="cpu", weights_only=True)
    info = ck["audiogen"]["dataset"]
    assert info["meta"]["num_files"] == 12 and info["normalized"]
    assert info["normalization"]["mean"][2] == 0.0 and info["normalization"]["std"][2] == 1.0  # pen flag untouched
    import csv

    rows = list(csv.DictReader(open(run / "logs" / "version_0" / "metrics.csv")))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses[-1] < losses[0]
    for seed in (0, 1):  # temperature 0: every draw is its mode, whatever the seed; recorded with the samples
        run_in_process("sample", "--run", run, "--frames", "40", "-n", "2", "-o", tmp_path / f"cold{seed}",
                       "--temperature", "0", "--seed", seed)
    assert json.loads((tmp_path / "cold0" / "samples.json").read_text())["temperature"] == 0
    assert np.array_equal(np.load(tmp_path / "cold0" / "sample_001.npy"), np.load(tmp_path / "cold1" / "sample_001.npy"))
    run_in_process("sample", "--run", run, "--frames", "40", "-n", "2", "-o", tmp_path / "s")
    z = np.load(tmp_path / "s" / "sample_000.npy")
    assert z.shape == (3, 40) and set(np.unique(z[2]).tolist()) <= {0.0, 1.0}
    assert (tmp_path / "s" / "strokes.png").stat().st_size > 1000
    rec = json.loads((tmp_path / "s" / "samples.json").read_text())
    assert rec["normalized"] and len(rec["diagnostics"]["latents"]["std_ratio"]) == 3
    q = rec["diagnostics"]["quality"]  # against the .npy folder: latent windows only (no audio)
    assert q["latent"]["dims"] == 3 * 4 and q["latent"]["distance"] >= 0 and "log_mel" not in q
    ev = run_here("evaluate", "--run", run, tmp_path / "strokes", "--quality-samples", "2").output
    assert "Fréchet distance to held-out data: latent windows" in ev


def test_latent_size_mismatch_names_both_numbers(tmp_path):
    write_stroke_corpus(tmp_path / "strokes", n=2, seed=0)
    r = run_in_process("train-prior", "--gin", "pipelines/vrnn_strokes.gin", tmp_path / "strokes", "-o", tmp_path / "r",
                       "--bind", "LATENT_SIZE=4", "--bind", "priors.sequence.dims=[3, 1]", check=False)
    assert r.returncode == 2
    assert "latent size 3" in r.stderr and "configured for 4" in r.stderr
