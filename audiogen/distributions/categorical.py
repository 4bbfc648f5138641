"""WaveNet-style softmax over the 2**bits bins of the input coding."""

from __future__ import annotations

import torch
from torch import Tensor

from audiogen.audio.coding import InputCoding
from audiogen.distributions.base import GridDistribution
from audiogen.distributions.mixture import gumbel_argmax


class Categorical(GridDistribution):
    """A free softmax over the 2**bits grid values; params are the 2**bits logits (256 for 8 bits).

    Targets are model-grid values (the coding's ``to_model``); each maps to the class of its nearest grid point.
    Large for 16 bits (65536 channels per sample): meant for 8-bit codings.
    """

    def __init__(self, bits: int = 8):
        super().__init__()
        self.coding = InputCoding(bits)
        self.num_params = self.coding.num_bins
        self.layout = f"one logit per grid value, {self.num_params}"

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:
        params = self._check(params, target)
        idx = self.coding.from_model(target).to(params.device)
        return torch.log_softmax(params, dim=1).gather(1, idx)

    @torch.no_grad()
    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        params = self._check(params)
        return self.coding.to_model(gumbel_argmax(params, dim=1, generator=generator))

    def mean(self, params: Tensor) -> Tensor:
        params = self._check(params)
        grid = self.coding.grid(dtype=params.dtype).to(params.device)[None, :, None]
        return (torch.softmax(params, dim=1) * grid).sum(1, keepdim=True)
