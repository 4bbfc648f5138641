"""Bernoulli over binary sequences (e.g. a pen-up flag), one logit per position.

Wrong for audio: it scores targets in {0, 1}, not samples on the coding's grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from audiogen.distributions.base import Distribution


class Bernoulli(Distribution):
    """P(x = 1) = sigmoid(logit); params [logit]; targets in {0, 1}. Not for audio samples."""

    num_params = 1
    layout = "logit"
    is_binary = True

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:
        """target * log sigmoid(l) + (1 - target) * log sigmoid(-l), i.e. minus BCE with logits."""
        params = self._check(params, target)
        t = target.to(params.dtype)
        return t * F.logsigmoid(params) + (1.0 - t) * F.logsigmoid(-params)

    @torch.no_grad()
    def sample(self, params: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """Draws in {0, 1}: 1 where logit + temperature * logistic noise > 0 (at 1 a Bernoulli draw, as
        u < sigmoid(logit); at 0 the more likely value), the two-class case of the mixtures' Gumbel scaling."""
        params = self._check(params)
        u = torch.rand(params.shape, generator=generator, device=params.device, dtype=params.dtype)
        if temperature == 1.0:
            return (u < torch.sigmoid(params)).to(params.dtype)
        return (params - temperature * torch.logit(u) > 0).to(params.dtype)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(self._check(params))
