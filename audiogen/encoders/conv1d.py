"""Strided 1-D convolutional encoder with residual units; optionally a ladder (one output per level)."""

from __future__ import annotations

from torch import nn

from audiogen.encoders.ladder import LadderEncoder
from audiogen.layers import Reach, ResidualUnit, StridedConv, as_list
from audiogen.pqmf import PQMF, Analysis, check_bands


class Conv1dEncoder(LadderEncoder):
    """Strided Conv1d stack: per stage, residual units then a strided conv; hop = product of strides.

    ``levels > 1`` makes it a ladder encoder for hierarchical models: level 1 is read after the first
    ``len(strides) - levels + 1`` stages (hop = their product), and each further level after one more stage, so
    ``strides=[4, 4, 4, 8], levels=2`` gives hops 64 and 512 from one pass. Every level has its own output head
    of ``latent_size`` channels. ``hop`` and ``forward`` refer to level 1.

    ``bands > 1`` splits the audio into that many sub-bands first (``audiogen.pqmf``, as RAVE's coders do): every
    convolution then runs at 1/``bands`` of the sample rate, far cheaper per second of audio, and hop = bands *
    product of strides.
    """

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16,
                 kernel_overlap: int = 2, dilations=(1, 3), stem_kernel: int = 7, levels: int = 1,
                 bands: int = 1):
        super().__init__()
        bands = check_bands(bands, "encoders.conv1d")
        # stages before the first level's output
        base = self._init_levels(strides, levels, "encoders.conv1d", front=bands)
        strides = self.strides
        channels = as_list(channels, len(strides), "channels")
        self.latent_size = int(latent_size)
        self.stem = nn.Conv1d(bands, channels[0], stem_kernel, padding=stem_kernel // 2)
        reach = Reach()  # context of level 1 on each side, in input samples: chunked and windowed encoding use it
        if bands > 1:  # plain Conv1d stem without bands: checkpoints of earlier runs keep their parameter names
            bank = PQMF(bands)
            self.stem = nn.Sequential(Analysis(bank), self.stem)
            reach.conv(2 * bank.margin + 1, stride=bands, left_pad=bank.margin)
        self.stages = nn.ModuleList()
        self.heads = nn.ModuleList()
        c_in = channels[0]
        reach.conv(stem_kernel, left_pad=stem_kernel // 2)
        for i, (s, c_out) in enumerate(zip(strides, channels)):
            units = [ResidualUnit(c_in, 3, d) for d in dilations]
            down = StridedConv(c_in, c_out, s, kernel_overlap)
            if i < base:
                reach.blocks(units)
                reach.conv(down.kernel_size, stride=s, left_pad=down.left_pad)
            self.stages.append(nn.Sequential(*units, down))
            c_in = c_out
            if i >= base - 1:
                self.heads.append(nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(c_out, self.latent_size, 3, padding=1)))
        reach.conv(3, left_pad=1)
        self.receptive_field = reach.context  # of level 1, i.e. of forward(); exact (tests check it is tight)
