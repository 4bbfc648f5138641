r"""Numerically stable log-masses of an interval under the logistic and Laplace distributions.

Arguments are standardised edges ``lo < hi`` (``(edge - mu) / s``). Every function here is finite, with finite
gradients, for any finite inputs (tiny or huge scales, means far outside the grid), and never forms
``CDF(hi) - CDF(lo)`` directly, which cancels to zero (then -inf) for narrow bins or far tails.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_HALF = -math.log(2.0)


def _tiny(x: Tensor) -> float:
    return torch.finfo(x.dtype).tiny


def log1mexp(d: Tensor) -> Tensor:
    """log(1 - exp(-d)) for d >= 0 via expm1 (exact for small d; absolute error <= eps for large d).

    d is clamped to the smallest normal number so that a width rounded to zero gives a large negative value
    rather than -inf (and a zero rather than an infinite gradient).
    """
    return torch.log(-torch.expm1(-d.clamp_min(_tiny(d))))


# --- logistic ---------------------------------------------------------------------------------------------------
#
# sigmoid(hi) - sigmoid(lo) = sigmoid(hi) * sigmoid(-lo) * (1 - exp(-(hi - lo)))   (an identity; check by
# putting the right-hand side over a common denominator). All three factors are in (0, 1] and their logs are
# computed without cancellation, whatever the signs and sizes of hi and lo.

def logistic_log_bin(lo: Tensor, hi: Tensor, first: Tensor, last: Tensor) -> Tensor:
    """log P(lo < Z <= hi) for a standard logistic Z; the ``first`` bin extends to -inf, the ``last`` to +inf."""
    upper = F.logsigmoid(hi).masked_fill(last, 0.0)  # log CDF(hi); the last bin has CDF(+inf) = 1
    lower = F.logsigmoid(-lo).masked_fill(first, 0.0)  # log (1 - CDF(lo)); the first bin has CDF(-inf) = 0
    width = log1mexp(hi - lo).masked_fill(first | last, 0.0)
    return upper + lower + width


# --- Laplace ----------------------------------------------------------------------------------------------------
#
# CDF(z) = exp(z) / 2 for z < 0 and 1 - exp(-z) / 2 for z >= 0. By symmetry a bin is mirrored so that its centre
# is <= 0; then either it lies left of the mode (mass exp(hi)/2 * (1 - exp(-(hi - lo)))) or it straddles the mode
# (mass (-expm1(-hi) - expm1(lo)) / 2, two positive terms, no cancellation).

def laplace_log_cdf(z: Tensor) -> Tensor:
    """log CDF(z) of the standard Laplace distribution."""
    right = torch.log1p(-0.5 * torch.exp(-z.clamp_min(0.0)))  # clamped: the unused branch stays finite
    return torch.where(z < 0, z + LOG_HALF, right)


def laplace_log_interval(lo: Tensor, hi: Tensor) -> Tensor:
    """log(CDF(hi) - CDF(lo)) of the standard Laplace distribution for finite lo < hi."""
    mirror = (lo + hi) > 0
    u = torch.where(mirror, -lo, hi)  # negation is exact, so mirrored bins still tile the line
    v = torch.where(mirror, -hi, lo)
    left = u + LOG_HALF + log1mexp(u - v)
    both = -torch.expm1(-u.clamp_min(0.0)) - torch.expm1(v.clamp_max(0.0))
    straddle = LOG_HALF + torch.log(both.clamp_min(_tiny(both)))
    return torch.where(u <= 0, left, straddle)


def laplace_log_bin(lo: Tensor, hi: Tensor, first: Tensor, last: Tensor) -> Tensor:
    """log P(lo < Z <= hi) for a standard Laplace Z; the ``first`` bin extends to -inf, the ``last`` to +inf."""
    inner = laplace_log_interval(lo, hi)
    return torch.where(first, laplace_log_cdf(hi), torch.where(last, laplace_log_cdf(-lo), inner))
