"""Strided 1-D convolutional encoder with residual units."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import Encoder
from audiogen.layers import ResidualUnit, StridedConv, as_list


class Conv1dEncoder(Encoder):
    """Strided Conv1d stack: per stage, residual units then a strided conv; hop = product of strides."""

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16,
                 kernel_overlap: int = 2, dilations=(1, 3), stem_kernel: int = 7):
        super().__init__()
        strides = [int(s) for s in strides]
        if not strides or any(s < 1 for s in strides):
            raise ValueError(f"strides must be positive integers, got {strides}")
        channels = as_list(channels, len(strides), "channels")
        self.hop = math.prod(strides)
        self.latent_size = int(latent_size)
        self.strides = strides
        self.stem = nn.Conv1d(1, channels[0], stem_kernel, padding=stem_kernel // 2)
        stages, c_in = [], channels[0]
        # Receptive field in input samples, tracked layer by layer (jump = input samples per step).
        rf, jump = stem_kernel - 1, 1
        for s, c_out in zip(strides, channels):
            units = [ResidualUnit(c_in, 3, d) for d in dilations]
            rf += sum(u.receptive_field for u in units) * jump
            down = StridedConv(c_in, c_out, s, kernel_overlap)
            rf += (down.kernel_size - 1) * jump
            jump *= s
            stages += units + [down]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(c_in, self.latent_size, 3, padding=1))
        rf += 2 * jump
        self.receptive_field = rf

    def forward(self, audio: Tensor) -> Tensor:
        pad = (-audio.shape[-1]) % self.hop
        if pad:
            audio = F.pad(audio, (0, pad))
        return self.head(self.stages(self.stem(audio)))
