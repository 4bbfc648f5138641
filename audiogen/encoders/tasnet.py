"""Conv-TasNet-style encoder: separable residual blocks and strided downsampling; optionally a ladder."""

from __future__ import annotations

from torch import nn

from audiogen.encoders.ladder import LadderEncoder
from audiogen.layers import Reach, StridedConv
from audiogen.tasnet.blocks import SeparableStack, stage_options


class TasNetEncoder(LadderEncoder):
    """Conv-TasNet-style stack: per stage, separable residual blocks then a strided conv; hop = product of strides.

    A block: 1x1 conv to ``expansion`` x channels, PReLU, norm, depthwise conv (dilations 1, 2, 4, ... across the
    blocks of a stage, or ``dilations``), PReLU, norm, 1x1 convs to the residual and skip paths; a stage's output is
    its summed skips. Stacked stages give the large downsampling a CW-VAE needs (strides [4, 4, 4, 8]: hops 64, 512).

    ``levels > 1`` makes a ladder as in ``encoders.conv1d``: level 1 is read after ``len(strides) - levels + 1``
    stages and each further level one stage later, each through its own head of ``latent_size`` channels.

    ``norm='cln'`` (default) normalises each frame over its channels, so ``receptive_field`` is finite and chunked
    encoding equals whole-file encoding. ``norm='gln'`` (Conv-TasNet's global layer norm, over channels and time)
    makes every frame depend on the whole input (including its zero padding): ``receptive_field`` is then None
    and files are encoded whole, and segmented evaluation needs whole files (``segment_seconds=0``).
    """

    def __init__(self, strides=(4, 4, 4), channels=(32, 64, 128), latent_size: int = 16,
                 blocks_per_stage: int | None = None, dilations=None, kernel_size: int = 3, expansion: int = 2,
                 norm: str = "cln", kernel_overlap: int = 2, stem_kernel: int = 7, levels: int = 1):
        super().__init__()
        base = self._init_levels(strides, levels, "encoders.tasnet")  # stages before the first level's output
        strides = self.strides
        channels, dilations, kernel_size, stem_kernel, expansion = stage_options(
            "encoders.tasnet", len(strides), channels, blocks_per_stage, dilations, kernel_size, stem_kernel,
            expansion, norm)
        self.norm = norm
        self.latent_size = int(latent_size)
        self.stem = nn.Conv1d(1, channels[0], stem_kernel, padding=stem_kernel // 2)
        self.stages, self.heads = nn.ModuleList(), nn.ModuleList()
        reach = Reach()  # of level 1, i.e. of forward()
        reach.conv(stem_kernel, left_pad=stem_kernel // 2)
        c_in = channels[0]
        for i, (s, c_out) in enumerate(zip(strides, channels)):
            blocks = SeparableStack(c_in, expansion * c_in, kernel_size, dilations, norm)
            down = StridedConv(c_in, c_out, s, kernel_overlap)
            if i < base:
                reach.blocks(blocks.blocks)
                reach.conv(down.kernel_size, stride=s, left_pad=down.left_pad)
            self.stages.append(nn.Sequential(blocks, down))
            c_in = c_out
            if i >= base - 1:
                self.heads.append(nn.Sequential(nn.PReLU(), nn.Conv1d(c_out, self.latent_size, 3, padding=1)))
        reach.conv(3, left_pad=1)
        # Exact (tests check it is tight); gLN's statistics span the whole input, so no finite context suffices.
        self.receptive_field = reach.context if norm == "cln" else None
