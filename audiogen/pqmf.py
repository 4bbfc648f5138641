"""Pseudo-QMF filter bank: audio split into ``bands`` critically sampled sub-bands and back (near-perfect
reconstruction), so that the convolutions of a coder run at 1/``bands`` of the sample rate (as RAVE's coders do).

The bands are cosine modulations of one linear-phase low-pass prototype (Kaiser window, ``2 * taps * bands + 1``
taps); its cutoff is chosen so that the prototype's power response is power complementary around pi / (2 bands),
i.e. its autocorrelation vanishes at non-zero multiples of 2 * bands: what cancels the aliasing between
neighbouring bands and keeps the overall response flat.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def prototype(bands: int, taps: int = 8, beta: float = 9.0) -> np.ndarray:
    """Low-pass prototype of ``2 * taps * bands + 1`` taps, its cutoff tuned for near-perfect reconstruction."""
    order = 2 * taps * bands
    n = np.arange(order + 1) - order / 2
    window = np.kaiser(order + 1, beta)

    def design(cutoff: float) -> np.ndarray:  # cutoff in units of pi
        return cutoff * np.sinc(cutoff * n) * window

    def leak(cutoff: float) -> float:  # the largest autocorrelation at non-zero lags 2 * bands * k
        h = design(cutoff)
        r = np.correlate(h, h, mode="full")[order:]
        return float(np.abs(r[2 * bands::2 * bands]).max() / r[0])

    grid = np.linspace(0.5, 1.5, 201) / (2 * bands)  # around the ideal pi / (2 bands)
    best = grid[int(np.argmin([leak(c) for c in grid]))]
    step = grid[1] - grid[0]
    fine = np.linspace(best - step, best + step, 201)
    h = design(fine[int(np.argmin([leak(c) for c in fine]))])
    return h / np.sqrt(np.sum(h ** 2) * 2 * bands)  # unit gain through analysis and synthesis


class PQMF(nn.Module):
    """``analysis``: (batch, 1, time) -> (batch, bands, time / bands); ``synthesis`` inverts it, up to the bank's
    small aliasing and ripple (reconstruction SNR about 62 dB at the default 8 taps per band, less within
    two filter lengths of the signal's ends, where the bands beyond it are missing).
    ``time`` must be a multiple of ``bands``; both are convolutions, so the bank is traced and exported as is."""

    def __init__(self, bands: int, taps: int = 8, beta: float = 9.0):
        super().__init__()
        if bands < 2 or bands & (bands - 1):
            raise ValueError(f"pqmf bands must be a power of 2 of at least 2, got {bands}")
        self.bands, self.taps = int(bands), int(taps)
        h = prototype(bands, taps, beta)
        order = len(h) - 1
        n = np.arange(order + 1) - order / 2
        k = np.arange(bands)[:, None]
        carrier, shift = (2 * k + 1) * math.pi / (2 * bands) * n, (-1) ** k * math.pi / 4
        # the analysis filters are time-reversed by conv1d's correlation: the prototype is symmetric, the phase
        # terms are not, so they are built for correlation directly
        analysis, synthesis = 2 * h * np.cos(carrier + shift)[:, ::-1], 2 * h * np.cos(carrier - shift) * bands
        for name, taps_ in (("analysis_filters", analysis), ("synthesis_filters", synthesis)):
            self.register_buffer(name, torch.tensor(taps_.copy(), dtype=torch.float32).unsqueeze(1), persistent=False)
        self.margin = order // 2  # samples of context on each side (the filters' half length)

    def analysis(self, x: Tensor) -> Tensor:
        return F.conv1d(F.pad(x, (self.margin, self.margin)), self.analysis_filters, stride=self.bands)

    def synthesis(self, bands: Tensor) -> Tensor:
        y = F.conv_transpose1d(bands, self.synthesis_filters, stride=self.bands)
        return y[..., self.margin: self.margin + bands.shape[-1] * self.bands]


class Analysis(nn.Module):
    """The bank's analysis as a layer (a coder's first one)."""

    def __init__(self, bank: PQMF):
        super().__init__()
        self.bank = bank

    def forward(self, x: Tensor) -> Tensor:
        return self.bank.analysis(x)


def check_bands(bands, name: str) -> int:
    """A coder's ``bands`` option: 1 (no bank) or a power of 2."""
    b = int(bands)
    if b < 1 or b & (b - 1):
        from audiogen.errors import ConfigError

        raise ConfigError(f"{name}.bands must be 1 (no filter bank) or a power of 2, got {bands!r}",
                          fix=f"bind {name}.bands to 1, 2, 4, 8 or 16")
    return b
