"""Continuous Gaussian (mixture) densities over samples.

These score a *density*, not a probability mass: their nats/bits are not comparable with the discretized
distributions' (a density can exceed one, and its value depends on the units). Use them for continuous
targets, or as a baseline whose numbers are reported separately.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiogen.distributions.base import Distribution
from audiogen.distributions.mixture import mix_log_prob, mix_mean, pick

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def normal_log_density(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    z = (x - mean) * torch.exp(-log_std)
    return -0.5 * z * z - log_std - HALF_LOG_2PI


class GaussianMixture(Distribution):
    """K Gaussians, params [logits K, means K, log stds K]; std = max(exp(log std), min_std). A density."""

    is_discrete = False

    def __init__(self, num_components: int = 10, min_std: float = 1e-3, *, mixture: bool = True):
        super().__init__()
        self._set_mixture(num_components, mixture, "log std")
        if not min_std > 0:
            raise ValueError(f"{type(self).__name__}: min_std must be > 0, got {min_std!r}")
        self.min_std = float(min_std)

    def extra_repr(self) -> str:
        return f"num_components={self.num_components}, min_std={self.min_std}"

    def _split(self, params: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        if self.has_logits:
            logits, means, log_stds = params.split(self.num_components, dim=1)
        else:
            logits, means, log_stds = None, params[:, :1], params[:, 1:]
        # A floor on the std keeps the density bounded (a collapsing std would make the loss unbounded below).
        return logits, means, log_stds.clamp_min(math.log(self.min_std))

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:
        """log density in nats, (B, 1, T)."""
        params = self._check(params, target)
        logits, means, log_stds = self._split(params)
        return mix_log_prob(logits, normal_log_density(target.to(params.dtype), means, log_stds))

    @torch.no_grad()
    def sample(self, params: Tensor, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """Continuous draws (not on any grid, not clipped), (B, 1, T); ``temperature`` scales all the noise (the
        Gaussian's and the component choice's Gumbel noise; 0 gives the most likely component's mean)."""
        params = self._check(params)
        logits, means, log_stds = self._split(params)
        mu, log_std = pick(logits, means, log_stds, generator=generator, temperature=temperature)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + log_std.exp() * (noise * temperature)

    def mean(self, params: Tensor) -> Tensor:
        params = self._check(params)
        logits, means, _ = self._split(params)
        return mix_mean(logits, means)


class Gaussian(GaussianMixture):
    """One Gaussian per sample, params [mean, log std]; std = max(exp(log std), min_std).

    A density, not a mass: its bits are not comparable with the discretized distributions'.
    """

    def __init__(self, min_std: float = 1e-3):
        super().__init__(1, min_std, mixture=False)
