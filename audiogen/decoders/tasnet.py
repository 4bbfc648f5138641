"""Conv-TasNet-style decoder mirroring ``encoders.tasnet``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from audiogen.contracts import Decoder
from audiogen.layers import StridedConvTranspose, check_strides
from audiogen.tasnet.blocks import SeparableStack, stage_options


class TasNetDecoder(Decoder):
    """Conv-TasNet-style upsampling stack: per stage a strided transposed conv then separable residual blocks.

    The blocks are those of ``encoders.tasnet`` (their skips summed); the output is tanh audio, or
    ``out_channels`` distribution parameters.

    ``strides`` and ``channels`` are given in the encoder's order (the decoder runs them reversed), so one gin
    macro can serve both. ``norm='gln'`` makes every output sample depend on all latent frames (segmented
    evaluation then needs whole files); ``'cln'`` (default) keeps the receptive field finite.
    """

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16, out_channels: int = 1,
                 blocks_per_stage: int | None = None, dilations=None, kernel_size: int = 3, expansion: int = 2,
                 norm: str = "cln", kernel_overlap: int = 2, output_kernel: int = 7):
        super().__init__()
        strides = check_strides(strides, "decoders.tasnet.strides")
        channels, dilations, kernel_size, output_kernel, expansion = stage_options(
            "decoders.tasnet", len(strides), channels, blocks_per_stage, dilations, kernel_size, output_kernel,
            expansion, norm)
        self.hop = math.prod(strides)
        self.strides, self.norm = strides, norm
        self.latent_size = int(latent_size)
        self.out_channels = int(out_channels)
        self.stem = nn.Conv1d(self.latent_size, channels[-1], 3, padding=1)
        layers = []
        rev = list(zip(strides, channels))[::-1]
        for i, (s, c_in) in enumerate(rev):
            c_out = rev[i + 1][1] if i + 1 < len(rev) else channels[0]
            layers += [nn.PReLU(), StridedConvTranspose(c_in, c_out, s, kernel_overlap),
                       SeparableStack(c_out, expansion * c_out, kernel_size, dilations, norm)]
        self.stages = nn.Sequential(*layers)
        self.head = nn.Conv1d(channels[0], self.out_channels, output_kernel, padding=output_kernel // 2)

    def forward(self, latents: Tensor) -> Tensor:
        y = self.head(self.stages(self.stem(latents)))  # SeparableStack ends in a PReLU
        return torch.tanh(y) if self.out_channels == 1 else y
