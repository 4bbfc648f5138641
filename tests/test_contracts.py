"""Every kind's checker accepts the built-ins and catches what training would trip on."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from audiogen.audio.coding import LinearPCM, MuLaw
from audiogen.contracts import (
    ContractError,
    Prior,
    PriorOutput,
    check_coding,
    check_distribution,
    check_prior,
    check_schedule,
)
from audiogen.distributions import Categorical
from audiogen.plugins import get_registry
from audiogen.priors.gaussian import DiagGaussianPrior
from audiogen.schedules import LinearSchedule

REG = get_registry()


@pytest.mark.parametrize("name", [n for n in REG.names("schedules") if n != "explicit"])
def test_builtin_schedules_pass(name):
    betas = check_schedule(REG.components["schedules"][name].factory)  # the registered factory, as gin has it
    assert betas.dtype == torch.float64


@pytest.mark.parametrize("name", REG.names("distributions"))
def test_builtin_distributions_pass(name):
    check_distribution(REG.components["distributions"][name].factory)


@pytest.mark.parametrize("coding", [MuLaw(8), LinearPCM(8), MuLaw(16), LinearPCM(16)], ids=str)
def test_builtin_codings_pass(coding):
    check_coding(coding)


class Float32Betas(LinearSchedule):
    def __call__(self):
        return super().__call__().float()


class BetaOne(LinearSchedule):
    def __call__(self):
        b = super().__call__().clone()
        b[-1] = 1.0
        return b


@pytest.mark.parametrize("bad, match", [(Float32Betas, "float64"), (BetaOne, "strictly between 0 and 1"),
                                        (lambda: [0.1, 0.2], "torch tensor")])
def test_check_schedule_catches(bad, match):
    with pytest.raises(ContractError, match=match):
        check_schedule(bad)


class Unnormalised(Categorical):
    def log_prob(self, params, target):  # forgot the log-softmax: not a distribution
        idx = self.coding.from_model(target)
        return params.gather(1, idx)


class Detached(Categorical):
    def log_prob(self, params, target):
        return super().log_prob(params.detach(), target)


@pytest.mark.parametrize("bad, match", [(Unnormalised(4), "sum to"), (Detached(4), "not differentiable")])
def test_check_distribution_catches(bad, match):
    with pytest.raises(ContractError, match=match):
        check_distribution(bad)


class OffByOne(MuLaw):
    def _quantize64(self, x):
        return super()._quantize64(x) + 1


def test_check_coding_catches_a_coding_that_does_not_round_trip():
    with pytest.raises(ContractError, match=r"quantize\(dequantize\(k\)\) != k"):
        check_coding(OffByOne(8))


class NoLatentSize(Prior):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


class NotDifferentiable(DiagGaussianPrior):
    def log_prob(self, x, mask=None):
        with torch.no_grad():
            return super().log_prob(x, mask)


class ScoresPadding(DiagGaussianPrior):
    def log_prob(self, x, mask=None):
        out = super().log_prob(x, None)
        return PriorOutput(out.log_prob, mask.sum(1), {})


class ShortSamples(DiagGaussianPrior):
    def sample(self, n, length):
        return super().sample(n, length - 1)


@pytest.mark.parametrize("bad, match", [
    (NoLatentSize(), "latent_size must be a positive int"),
    (NotDifferentiable(3), "does not depend on NotDifferentiable's parameters"),
    (ScoresPadding(3), "masked frames changed ScoresPadding.log_prob"),
    (ShortSamples(3), r"sample\(2, 6\) returned shape \(2, 3, 5\)"),
])
def test_check_prior_catches_what_training_needs(bad, match):
    with pytest.raises(ContractError, match=match):
        check_prior(bad)


def test_check_prior_leaves_no_gradients_behind():
    prior = DiagGaussianPrior(3)
    check_prior(prior)
    assert all(p.grad is None for p in prior.parameters())
    assert math.isfinite(float(prior.log_prob(torch.zeros(1, 3, 2)).log_prob.detach()))
