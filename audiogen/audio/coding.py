r"""Input coding: how a waveform in [-1, 1] becomes ``2**b`` discrete bins and back.

Three domains are involved:

* waveform ``x`` in [-1, 1] (what files hold),
* bin index ``k`` in ``{0, ..., 2**b - 1}`` (what a categorical model predicts),
* model value ``y`` on a grid shared by every coding (what a continuous model sees/predicts).

The model grid is the same for all codings, so a discretized likelihood is written once::

    y_k = -1 + 2 k / (2**b - 1),   k = 0 .. 2**b - 1      (bin half-width 1 / (2**b - 1))
    to_model(k)   = y_k
    from_model(y) = clamp(round((y + 1) / 2 * (2**b - 1)), 0, 2**b - 1)   (nearest grid point)

Mu-law (``MuLaw``), with ``mu = 2**b - 1``::

    F(x)      = sign(x) ln(1 + mu |x|) / ln(1 + mu)
    quantize  = clamp(round((F(x) + 1) / 2 * mu), 0, mu)
    F^-1(y)   = sign(y) ((1 + mu)^|y| - 1) / mu
    dequantize(k) = F^-1(y_k)

  so the model grid is the companded domain. Internally float64, so 16 bits round-trip exactly.

Linear PCM (``LinearPCM``), with ``h = 2**(b-1)``::

    quantize(x)   = clamp(round(x h), -h, h - 1) + h
    dequantize(k) = (k - h) / h

  so 16-bit PCM read from a file as ``int16 / 32768`` round-trips exactly.

``encode(x) = to_model(quantize(x))`` and ``decode(y) = dequantize(from_model(y))``.
Any ``bits`` in 2..16 is accepted; 8 and 16 are the tested settings. Inputs may be torch
tensors or numpy arrays (or Python floats); shapes are preserved. Values outside [-1, 1] (and +-inf) are
clipped and NaN maps to 0, so indices are always valid. Waveform and model values must be floating point:
integer, complex or non-numeric data raise TypeError (int16 PCM would otherwise clip to +-1 silently).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["InputCoding", "MuLaw", "LinearPCM"]

MIN_BITS, MAX_BITS = 2, 16


def _as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":  # strings, objects, complex, dates: torch's own error would not say why
        raise TypeError(f"input coding needs real numbers, got an array of dtype {a.dtype}")
    return torch.as_tensor(a)


def _values(x) -> Tensor:
    """Waveform or model values as float64. Only floating data is accepted: int16 PCM passed by mistake would clip
    to +-1 silently, and complex data would lose its imaginary part."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.float64)
    t = _as_tensor(x)
    if not t.is_floating_point():
        raise TypeError(f"input coding needs floating-point values in [-1, 1], got dtype {t.dtype} "
                        f"(for int16 PCM use x / 32768)")
    return t.to(torch.float64)


class InputCoding:
    """Base class: a bijection between ``2**bits`` bins, waveform levels and the model grid."""

    kind = "coding"

    def __init__(self, bits: int = 8):
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not MIN_BITS <= bits <= MAX_BITS:
            raise ValueError(f"{type(self).__name__}: bits must be an integer in {MIN_BITS}..{MAX_BITS} "
                             f"(8 and 16 are the tested settings), got {bits!r}")
        self.bits = int(bits)
        self.num_bins = 2 ** self.bits

    @property
    def name(self) -> str:
        return f"{self.kind}{self.bits}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bits={self.bits})"

    # --- waveform <-> bins (coding specific) ---
    def _quantize64(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _dequantize64(self, k: Tensor) -> Tensor:
        raise NotImplementedError

    def quantize(self, x) -> Tensor:
        """Waveform in [-1, 1] -> long bin index in [0, 2**bits)."""
        x = torch.nan_to_num(_values(x), nan=0.0).clamp(-1.0, 1.0)
        return self._quantize64(x).clamp(0, self.num_bins - 1).long()

    def dequantize(self, idx, dtype: torch.dtype = torch.float32) -> Tensor:
        """Bin index -> waveform value (the level the bin stands for)."""
        k = _as_tensor(idx).long().clamp(0, self.num_bins - 1)
        return self._dequantize64(k.to(torch.float64)).to(dtype)

    # --- bins <-> model grid (shared by every coding) ---
    def to_model(self, idx, dtype: torch.dtype = torch.float32) -> Tensor:
        """Bin index -> model grid value y_k = -1 + 2k / (2**bits - 1)."""
        k = _as_tensor(idx).to(torch.float64)
        return (-1.0 + 2.0 * k / (self.num_bins - 1)).to(dtype)

    def from_model(self, y) -> Tensor:
        """Model value in [-1, 1] -> index of the nearest grid point."""
        y = torch.nan_to_num(_values(y), nan=0.0).clamp(-1.0, 1.0)
        return torch.round((y + 1.0) / 2.0 * (self.num_bins - 1)).clamp(0, self.num_bins - 1).long()

    def grid(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The ``2**bits`` model-domain values, ascending."""
        return self.to_model(torch.arange(self.num_bins), dtype=dtype)

    def encode(self, x, dtype: torch.dtype = torch.float32) -> Tensor:
        """Waveform -> model grid value of its bin."""
        return self.to_model(self.quantize(x), dtype=dtype)

    def decode(self, y, dtype: torch.dtype = torch.float32) -> Tensor:
        """Model value -> waveform level of the nearest bin."""
        return self.dequantize(self.from_model(y), dtype=dtype)


class MuLaw(InputCoding):
    """Mu-law companding with mu = 2**bits - 1 (fine steps near zero, coarse near full scale)."""

    kind = "mulaw"

    @property
    def mu(self) -> int:
        return self.num_bins - 1

    def compress(self, x) -> Tensor:
        """F(x) = sign(x) ln(1 + mu|x|) / ln(1 + mu), in float64."""
        x = _as_tensor(x).to(torch.float64)
        return torch.sign(x) * torch.log1p(self.mu * x.abs()) / math.log1p(self.mu)

    def expand(self, y) -> Tensor:
        """F^-1(y) = sign(y) ((1 + mu)^|y| - 1) / mu, in float64."""
        y = _as_tensor(y).to(torch.float64)
        # expm1 keeps precision for tiny |y| (16-bit bins near zero).
        return torch.sign(y) * torch.expm1(y.abs() * math.log1p(self.mu)) / self.mu

    def _quantize64(self, x: Tensor) -> Tensor:
        return torch.round((self.compress(x) + 1.0) / 2.0 * self.mu)

    def _dequantize64(self, k: Tensor) -> Tensor:
        return self.expand(-1.0 + 2.0 * k / self.mu)


class LinearPCM(InputCoding):
    """Uniform PCM levels (k - 2**(bits-1)) / 2**(bits-1), like integer samples in a file."""

    kind = "pcm"

    @property
    def half(self) -> int:
        return self.num_bins // 2

    def _quantize64(self, x: Tensor) -> Tensor:
        return torch.round(x * self.half).clamp(-self.half, self.half - 1) + self.half

    def _dequantize64(self, k: Tensor) -> Tensor:
        return (k - self.half) / self.half
