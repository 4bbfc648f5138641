"""Discretized mixture of Laplace distributions: heavier tails and a sharper peak than the logistic."""

from __future__ import annotations

import torch
from torch import Tensor

from audiogen.distributions.discretized import DiscretizedMixture
from audiogen.distributions.mixture import uniform
from audiogen.distributions.stable import laplace_log_bin


class DiscretizedLaplaceMixture(DiscretizedMixture):
    """Discretized mixture of Laplaces on the 2**bits model grid; params [logits K, means K, log scales K]."""

    def __init__(self, num_components: int = 10, bits: int = 16, min_log_scale: float = -9.0):
        super().__init__(num_components, bits, min_log_scale)

    _log_bin = staticmethod(laplace_log_bin)

    @staticmethod
    def _standard_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
        # The difference of two unit exponentials is a standard Laplace.
        return torch.log(uniform(like, generator)) - torch.log(uniform(like, generator))
