"""Tests of schedules.sigmoid: its contract, its shape, and a diffusion prior trained with it through the CLI."""

import json

import pytest
import torch

from audiogen.contracts import ContractError, check_schedule
from audiogen.errors import ConfigError
from audiogen_example.sigmoid_schedule import SigmoidSchedule


def test_contract():
    betas = check_schedule(SigmoidSchedule)  # built with its defaults, as `@schedules.sigmoid()` would be
    assert len(betas) == 200
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.05)
    assert bool((betas[1:] > betas[:-1]).all())  # rising
    mid = betas[100] - betas[99]
    assert mid > betas[1] - betas[0] and mid > betas[-1] - betas[-2]  # steepest in the middle


def test_bad_settings_are_a_clear_error():
    with pytest.raises(ConfigError, match="schedules.sigmoid"):
        SigmoidSchedule(beta_end=1.5)()
    with pytest.raises(ConfigError, match="steps = 0"):
        SigmoidSchedule(steps=0)
    with pytest.raises(ContractError):  # a schedule that hands back float32 breaks the contract
        check_schedule(lambda: SigmoidSchedule()().float())


def test_diffwave_trains_with_it_through_the_cli(audiogen_latents, audiogen_cli, tmp_path):
    run = tmp_path / "prior"
    audiogen_cli("train-prior", "--gin", "pipelines/diffwave_latents.gin", "--gin", "example/sigmoid_schedule.gin",
                 "--bind", f"LATENT_SIZE={audiogen_latents.latent_size}", "--bind", "priors.diffwave.residual_layers=2",
                 "--bind", "priors.diffwave.residual_channels=8", "--bind", "priors.diffwave.dilation_cycle=2",
                 "--bind", "train.max_steps=1", "--bind", "train.batch_size=2", audiogen_latents, "-o", run,
                 "--no-progress")
    info = json.loads(audiogen_cli("info", run / "model.ckpt", "--json").stdout)
    assert "schedules.sigmoid.sharpness = 6.0" in info["operative_config"]
    assert torch.is_tensor(SigmoidSchedule()())
