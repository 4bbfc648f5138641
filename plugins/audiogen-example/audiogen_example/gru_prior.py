"""An autoregressive GRU prior over latent sequences with an exact likelihood.

p(x) = prod_t N(x_t; mean_t, diag(std_t^2)), where (mean_t, std_t) are read from a GRU's state after x_1 .. x_{t-1}.
``train-prior`` minimises the default ``Prior.training_loss``: -log p per scored frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from audiogen.contracts import Prior, PriorOutput


class GRUPrior(Prior):
    """GRU over latent frames, a diagonal Gaussian per frame given the frames before it (exact likelihood)."""

    def __init__(self, latent_size: int = 8, hidden_size: int = 64, num_layers: int = 1, min_std: float = 1e-3):
        super().__init__()
        self.latent_size = int(latent_size)  # the contract: declared, checked against the dataset
        self.min_std = float(min_std)
        self.gru = nn.GRU(self.latent_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 2 * self.latent_size)

    def frame_params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """GRU output (..., hidden) -> mean and std (..., latent_size) of the next frame."""
        mean, raw = self.head(h).chunk(2, dim=-1)
        return mean, nn.functional.softplus(raw) + self.min_std

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> PriorOutput:
        """x (B, C, L), mask (B, L) True on real frames -> log p per sequence, padded frames excluded."""
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        frames = x.transpose(1, 2)  # (B, L, C)
        prev = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], 1)  # x_{t-1}, zeros before the first
        h, _ = self.gru(prev)
        mean, std = self.frame_params(h)
        per_frame = Normal(mean, std).log_prob(frames).sum(-1)  # (B, L)
        # padding sits after the real frames, and the GRU only looks back: masking the scores is exact
        per_frame = torch.where(mask, per_frame, torch.zeros_like(per_frame))
        lp = per_frame.sum(1)
        return PriorOutput(log_prob=lp, frames=mask.sum(1), terms={"nll": -lp})

    @torch.no_grad()
    def sample(self, n: int, length: int) -> Tensor:
        """n sequences of ``length`` frames, (n, latent_size, length), one frame at a time."""
        x = self.head.weight.new_zeros(n, 1, self.latent_size)
        state, out = None, []
        for _ in range(length):
            h, state = self.gru(x, state)
            mean, std = self.frame_params(h)
            x = mean + std * torch.randn_like(mean)
            out.append(x)
        return torch.cat(out, 1).transpose(1, 2)
