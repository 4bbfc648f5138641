"""Transposed-convolution decoder mirroring ``encoders.conv1d``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from audiogen.contracts import Decoder
from audiogen.layers import ResidualUnit, StridedConvTranspose, as_list


class Conv1dDecoder(Decoder):
    """Upsampling stack: per stage a strided transposed conv then residual units; output tanh audio or params.

    ``strides`` and ``channels`` are given in the encoder's order (the decoder runs them reversed), so one gin
    macro can serve both.
    """

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16, out_channels: int = 1,
                 kernel_overlap: int = 2, dilations=(1, 3), output_kernel: int = 7):
        super().__init__()
        strides = [int(s) for s in strides]
        channels = as_list(channels, len(strides), "channels")
        self.hop = math.prod(strides)
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
                                  nn.Conv1d(channels[0], self.out_channels, output_kernel, padding=output_kernel // 2))

    def forward(self, latents: Tensor) -> Tensor:
        y = self.head(self.stages(self.stem(latents)))
        return torch.tanh(y) if self.out_channels == 1 else y
