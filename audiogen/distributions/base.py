"""Shape checks shared by every output distribution."""

from __future__ import annotations

import torch
from torch import Tensor

from audiogen.contracts import OutputDistribution


class Distribution(OutputDistribution):
    """An ``OutputDistribution`` that validates its inputs; ``layout`` names the channels for error messages."""

    num_params: int
    layout: str = ""
    is_discrete: bool = True  # log_prob is a probability mass (False: a density, bits not comparable)
    is_binary: bool = False  # scores {0, 1} targets, not audio (the pipeline refuses it for audio)

    def mean(self, params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"num_params={self.num_params}"

    def _set_mixture(self, num_components: int, mixture: bool, scale: str) -> None:
        """Parameter layout of a K-component mixture [logits K, locations K, ``scale``s K], or of one component
        [location, ``scale``] without logits when ``mixture`` is False."""
        if int(num_components) < 1 or (not mixture and num_components != 1):
            raise ValueError(f"{type(self).__name__}: num_components must be >= 1, got {num_components!r}")
        self.num_components = int(num_components)
        self.has_logits = mixture
        self.num_params = 3 * self.num_components if mixture else 2
        self.layout = (f"mixture logits, means, {scale}s; {self.num_components} each" if mixture
                       else f"mean, {scale}")

    def _check(self, params: Tensor, target: Tensor | None = None) -> Tensor:
        """Raise a ValueError on wrong shapes; return params in a float dtype precise enough to score."""
        name = type(self).__name__
        if params.dim() != 3 or params.shape[1] != self.num_params:
            got = params.shape[1] if params.dim() == 3 else f"shape {tuple(params.shape)}"
            raise ValueError(f"{name}: params must be (B, {self.num_params}, T) with {self.num_params} channels "
                             f"({self.layout}); got {got}")
        if target is not None and tuple(target.shape) != (params.shape[0], 1, params.shape[2]):
            raise ValueError(f"{name}: target must be (B, 1, T) = {(params.shape[0], 1, params.shape[2])} to match "
                             f"params, got {tuple(target.shape)}")
        # Half precision is too coarse for 16-bit bins; score in float32 (or float64 if given).
        return params if params.dtype in (torch.float32, torch.float64) else params.float()


class GridDistribution(Distribution):
    """A distribution over the ``2**bits`` model grid shared by every input coding (``self.coding``)."""

    @property
    def bits(self) -> int:
        return self.coding.bits

    @property
    def num_bins(self) -> int:
        return self.coding.num_bins
