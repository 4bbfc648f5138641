"""Discretized mixture of logistics (PixelCNN++-style likelihood for audio samples) and its one-component case."""

from __future__ import annotations

import torch
from torch import Tensor

from audiogen.distributions.discretized import DiscretizedMixture
from audiogen.distributions.logistic_kernel import DMoLLogProb
from audiogen.distributions.mixture import uniform
from audiogen.distributions.stable import logistic_log_bin


class DiscretizedLogisticMixture(DiscretizedMixture):
    """Discretized mixture of logistics on the 2**bits model grid; params [logits K, means K, log scales K]."""

    def __init__(self, num_components: int = 10, bits: int = 16, min_log_scale: float = -9.0):
        super().__init__(num_components, bits, min_log_scale)

    # The autograd reference (DiscretizedMixture.log_prob); log_prob below is the fused equivalent.
    _log_bin = staticmethod(logistic_log_bin)

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:
        """log P(bin of ``target``) in nats, (B, 1, T); target on the model grid (off-grid: nearest point)."""
        params = self._check(params, target)
        logits, means, log_scales = self._split(params)
        k = self.coding.from_model(target).to(params.device)
        return DMoLLogProb.apply(logits, means, log_scales, k, self.num_bins, self.min_log_scale)

    @staticmethod
    def _standard_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
        u = uniform(like, generator)
        return torch.log(u) - torch.log1p(-u)  # logistic quantile function


class DiscretizedLogistic(DiscretizedLogisticMixture):
    """One discretized logistic on the 2**bits model grid; params [mean, log scale] (no dead mixture logit)."""

    def __init__(self, bits: int = 16, min_log_scale: float = -9.0):
        DiscretizedMixture.__init__(self, 1, bits, min_log_scale, mixture=False)
