"""Transposed-convolution decoder mirroring ``encoders.conv1d``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from audiogen.contracts import Decoder
from audiogen.errors import ConfigError
from audiogen.layers import ResidualUnit, StridedConvTranspose, as_list
from audiogen.pqmf import PQMF, check_bands


class Conv1dDecoder(Decoder):
    """Upsampling stack: per stage a strided transposed conv then residual units; output tanh audio or params.

    ``strides`` and ``channels`` are given in the encoder's order (the decoder runs them reversed), so one gin
    macro can serve both. ``bands > 1`` (audio output only) makes the last layer emit that many sub-bands, joined
    by the synthesis of ``audiogen.pqmf``'s filter bank, so every convolution runs at 1/``bands`` of the sample
    rate; hop = bands * product of strides, as for ``encoders.conv1d`` with the same ``bands``.
    """

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16, out_channels: int = 1,
                 kernel_overlap: int = 2, dilations=(1, 3), output_kernel: int = 7, bands: int = 1):
        super().__init__()
        strides = [int(s) for s in strides]
        channels = as_list(channels, len(strides), "channels")
        bands = check_bands(bands, "decoders.conv1d")
        if bands > 1 and out_channels != 1:
            raise ConfigError(f"decoders.conv1d.bands={bands} needs audio output (out_channels=1), got "
                              f"out_channels={out_channels}",
                              fix="bind decoders.conv1d.bands = 1 for a decoder of distribution parameters")
        self.hop = bands * math.prod(strides)
        self.latent_size = int(latent_size)
        self.out_channels = int(out_channels)
        self.strides = strides
        self.stem = nn.Conv1d(self.latent_size, channels[-1], 3, padding=1)
        layers = []
        rev = list(zip(strides, channels))[::-1]
        for i, (s, c_in) in enumerate(rev):
            c_out = rev[i + 1][1] if i + 1 < len(rev) else channels[0]
            layers += [nn.LeakyReLU(0.2), StridedConvTranspose(c_in, c_out, s, kernel_overlap)]
            layers += [ResidualUnit(c_out, 3, d) for d in dilations]
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.LeakyReLU(0.2),
                                  nn.Conv1d(channels[0], self.out_channels * bands, output_kernel,
                                            padding=output_kernel // 2))
        self.bank = PQMF(bands) if bands > 1 else None

    def forward(self, latents: Tensor) -> Tensor:
        y = self.head(self.stages(self.stem(latents)))
        if self.bank is not None:
            y = self.bank.synthesis(y)
        return torch.tanh(y) if self.out_channels == 1 else y
