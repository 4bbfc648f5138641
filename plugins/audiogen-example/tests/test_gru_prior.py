"""Tests of priors.example_gru: its contract, its likelihood, and the CLI path a user takes."""

import json

import torch
from torch.distributions import Normal

from audiogen.contracts import check_prior
from audiogen_example.gru_prior import GRUPrior


def test_contract():
    check_prior(GRUPrior(latent_size=3, hidden_size=8))  # shapes, masking, gradients, samples


def test_likelihood_is_the_one_sampling_follows():
    """The parallel score equals the product of the per-frame Gaussians that sampling draws from."""
    torch.manual_seed(0)
    prior = GRUPrior(latent_size=3, hidden_size=8)
    x = torch.randn(2, 3, 5)
    want, prev, state = torch.zeros(2), torch.zeros(2, 1, 3), None
    for t in range(5):
        h, state = prior.gru(prev, state)
        mean, std = prior.frame_params(h[:, 0])
        want = want + Normal(mean, std).log_prob(x[:, :, t]).sum(-1)
        prev = x[:, None, :, t]
    torch.testing.assert_close(prior.log_prob(x).log_prob, want)


def test_trains_samples_and_decodes_through_the_cli(audiogen_latents, audiogen_cli, tmp_path):
    run = tmp_path / "prior"
    # the prior's latent size is read from audiogen_latents (latent size 4)
    audiogen_cli("train-prior", "--gin", "example/gru_prior.gin", "--bind", "train.max_steps=2",
                 "--bind", "train.batch_size=2", audiogen_latents, "-o", run, "--no-progress")
    info = json.loads(audiogen_cli("info", run / "model.ckpt", "--json").stdout)
    assert "priors.example_gru" in json.dumps(info)
    audiogen_cli("sample", "--run", run, "-n", "2", "--seconds", "0.2", "-o", tmp_path / "samples")
    assert len(list((tmp_path / "samples").glob("*.wav"))) == 2
