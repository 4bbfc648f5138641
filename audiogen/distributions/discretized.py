r"""Mixtures of location-scale distributions discretized onto the model grid.

The grid is the one every input coding shares (``audiogen.audio.coding``): ``y_k = -1 + 2k / (2**b - 1)``.
Bin ``k`` covers ``[y_k - h, y_k + h]`` with ``h = 1 / (2**b - 1)``; the first bin also takes ``(-inf, y_0 + h]``
and the last ``[y_last - h, +inf)``, so the bin masses sum to one for any parameters.

Each edge is one division of an integer, ``(k -+ 1/2 - half) / half`` with ``half = (2**b - 1) / 2``, so the upper
edge of bin k and the lower edge of bin k+1 are the same float and the masses telescope to one even in float32.
Subclasses supply the standardised log bin mass and the standard noise for sampling.
"""

from __future__ import annotations

import torch
from torch import Tensor

from audiogen.audio.coding import InputCoding
from audiogen.distributions.base import GridDistribution
from audiogen.distributions.mixture import mix_log_prob, mix_mean, pick


class DiscretizedMixture(GridDistribution):
    """K components, params ``[mixture logits K, means K, log scales K]`` (3K channels).

    With ``mixture=False`` (single component) the logits are dropped: params ``[mean, log scale]``.
    Log scales are clamped below at ``min_log_scale`` (a floor on the width, in model units).
    """

    def __init__(self, num_components: int = 10, bits: int = 16, min_log_scale: float = -9.0, *,
                 mixture: bool = True):
        super().__init__()
        self._set_mixture(num_components, mixture, "log scale")
        self.coding = InputCoding(bits)  # the shared grid (to_model / from_model), coding independent
        self.min_log_scale = float(min_log_scale)

    def extra_repr(self) -> str:
        return f"num_components={self.num_components}, bits={self.bits}, min_log_scale={self.min_log_scale}"

    # --- what a subclass provides ---
    @staticmethod
    def _log_bin(lo: Tensor, hi: Tensor, first: Tensor, last: Tensor) -> Tensor:  # pragma: no cover - abstract
        """log P(lo < Z <= hi) for the standard distribution; first/last bins are open to -inf/+inf."""
        raise NotImplementedError

    @staticmethod
    def _standard_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    # --- shared ---
    def _split(self, params: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        if not self.has_logits:
            return None, params[:, :1], params[:, 1:]
        logits, means, log_scales = params.split(self.num_components, dim=1)
        return logits, means, log_scales

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:
        """log P(bin of ``target``) in nats, (B, 1, T); target on the model grid (off-grid: nearest point)."""
        params = self._check(params, target)
        logits, means, log_scales = self._split(params)
        k = self.coding.from_model(target)
        half = (self.num_bins - 1) / 2.0
        j = (k - self.num_bins // 2).to(params.dtype)  # an integer; one division per edge makes the upper edge
        lo_edge, hi_edge = j / half, (j + 1.0) / half  # of bin k and the lower edge of bin k+1 the same float
        inv_scale = torch.exp(-log_scales.clamp_min(self.min_log_scale))
        hi = (hi_edge - means) * inv_scale
        lo = (lo_edge - means) * inv_scale
        first, last = k == 0, k == self.num_bins - 1
        return mix_log_prob(logits, self._log_bin(lo, hi, first, last))

    @torch.no_grad()
    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Exact draws, (B, 1, T): a continuous draw rounded to the nearest grid value is a draw of the bins."""
        params = self._check(params)
        logits, means, log_scales = self._split(params)
        mu, log_s = pick(logits, means, log_scales.clamp_min(self.min_log_scale), generator=generator)
        x = mu + log_s.exp() * self._standard_noise(mu, generator)
        return self.coding.to_model(self.coding.from_model(x))

    def mean(self, params: Tensor) -> Tensor:
        """The continuous mixture's mean clipped to [-1, 1] (a point reconstruction; ignores the clipping mass)."""
        params = self._check(params)
        logits, means, _ = self._split(params)
        return mix_mean(logits, means).clamp(-1.0, 1.0)
