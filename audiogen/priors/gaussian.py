"""The simplest latent model: frames i.i.d. under a learned diagonal Gaussian. A baseline for bits per frame."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from audiogen.contracts import Prior, PriorOutput


class DiagGaussianPrior(Prior):
    """Independent frames, x_t ~ N(mu, diag(sigma^2)) with learned mu and log sigma (no temporal structure)."""

    def __init__(self, latent_size: int = 16, min_std: float = 1e-3):
        super().__init__()
        self.latent_size = int(latent_size)
        self.min_std = min_std
        self.mean = nn.Parameter(torch.zeros(self.latent_size))
        self.log_std = nn.Parameter(torch.zeros(self.latent_size))

    def std(self) -> Tensor:
        return self.log_std.exp().clamp_min(self.min_std)

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> PriorOutput:
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        std = self.std()[:, None]
        z = (x - self.mean[:, None]) / std
        per_frame = (-0.5 * z.pow(2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(1)  # (B, L)
        per_frame = torch.where(mask, per_frame, torch.zeros_like(per_frame))
        lp = per_frame.sum(1)
        return PriorOutput(log_prob=lp, frames=mask.sum(1), terms={"nll": -lp})

    @torch.no_grad()
    def sample(self, n: int, length: int) -> Tensor:
        eps = torch.randn(n, self.latent_size, length, device=self.mean.device)
        return self.mean[:, None] + self.std()[:, None] * eps
