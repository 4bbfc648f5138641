"""Conv-TasNet building blocks (Luo & Mesgarani 2019) shared by ``encoders.tasnet`` and ``decoders.tasnet``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.layers import as_list

NORMS = ("cln", "gln")


class GlobalLayerNorm(nn.Module):
    """gLN on channel-last (B, T, C): statistics over all of (T, C) of each item, a gain and bias per channel."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.bias, F.layer_norm(x, x.shape[1:], eps=self.eps), self.weight)


def make_norm(norm: str, channels: int) -> nn.Module:
    """For channel-last (B, T, C): 'cln' normalises each frame over its channels (no temporal context), 'gln' over
    the channels and the whole sequence of each item (Conv-TasNet's global layer norm)."""
    if norm == "cln":
        return nn.LayerNorm(channels)
    if norm == "gln":
        return GlobalLayerNorm(channels)
    raise ValueError(f"norm must be one of {', '.join(repr(n) for n in NORMS)}, got {norm!r} ('cln': per frame; "
                     f"'gln': over the whole input)")


class DepthwiseConv(nn.Module):
    """Depthwise dilated 'same' conv on channel-last (B, T, C): a sum of ``kernel_size`` shifted copies, each scaled
    per channel. Equals ``nn.Conv1d(C, C, k, dilation=d, padding=(k - 1) * d // 2, groups=C)`` on the transposed
    input, but with no transposed copies: a CW-VAE training step takes a quarter less CPU time."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        bound = kernel_size ** -0.5  # nn.Conv1d's default initialisation (fan-in = kernel_size)
        self.weight = nn.Parameter(torch.empty(kernel_size, channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))
        self.dilation = dilation
        self.padding = (kernel_size - 1) * dilation // 2  # on the left; the rest (equal for odd kernels) on the right

    def forward(self, x: Tensor) -> Tensor:
        n, d = x.shape[1], self.dilation
        xp = F.pad(x, (0, 0, self.padding, (len(self.weight) - 1) * d - self.padding))
        y = self.bias
        for i, w in enumerate(self.weight):
            y = torch.addcmul(y, xp[:, i * d: i * d + n], w)
        return y


class SeparableBlock(nn.Module):
    """1x1 conv to ``hidden`` -> PReLU -> norm -> depthwise dilated conv -> PReLU -> norm -> 1x1 convs to the
    residual and skip paths (``channels`` each). Length preserving; ``last`` blocks have no residual output.

    Runs channel-last (B, T, C): the 1x1 convs are matmuls and the norms fused kernels, 2.5x faster on CPU than
    channel-first, where cLN is a chain of elementwise ops.
    """

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation: int, norm: str, last: bool = False):
        super().__init__()
        self.expand = nn.Linear(channels, hidden)
        self.norm1, self.norm2 = make_norm(norm, hidden), make_norm(norm, hidden)
        self.act1, self.act2 = nn.PReLU(), nn.PReLU()  # one slope each: channel-last input has no channel dim 1
        self.depthwise = DepthwiseConv(hidden, kernel_size, dilation)
        self.last = last
        self.out = nn.Linear(hidden, channels if last else 2 * channels)  # skip (+ residual) in one matmul
        self.kernel_size, self.dilation, self.padding = kernel_size, dilation, self.depthwise.padding

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        h = self.norm1(self.act1(self.expand(x)))
        y = self.out(self.norm2(self.act2(self.depthwise(h))))
        if self.last:
            return None, y
        skip, res = y.chunk(2, dim=-1)
        return res + x, skip


class SeparableStack(nn.Module):
    """Separable blocks with growing dilations on one residual stream; (B, C, T) -> PReLU(sum of their skips)."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilations: list[int], norm: str):
        super().__init__()
        n = len(dilations)
        self.blocks = nn.ModuleList(SeparableBlock(channels, hidden, kernel_size, d, norm, last=i == n - 1)
                                    for i, d in enumerate(dilations))
        self.act = nn.PReLU()

    def forward(self, x: Tensor) -> Tensor:
        x, total = x.transpose(1, 2), None
        for block in self.blocks:
            x, skip = block(x)
            total = skip if total is None else total + skip
        return self.act(total).transpose(1, 2)


def block_dilations(blocks_per_stage: int | None, dilations) -> list[int]:
    """Dilations of one stage: ``dilations`` as given, else 1, 2, 4, ... for ``blocks_per_stage`` blocks (4)."""
    if dilations is None:
        n = 4 if blocks_per_stage is None else int(blocks_per_stage)
        if n < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage!r}")
        return [2**i for i in range(n)]
    dilations = [int(d) for d in dilations]
    if not dilations or any(d < 1 for d in dilations):
        raise ValueError(f"dilations must be a non-empty list of positive integers, got {dilations}")
    if blocks_per_stage is not None and int(blocks_per_stage) != len(dilations):
        raise ValueError(f"blocks_per_stage={blocks_per_stage} but dilations has {len(dilations)} entries "
                         f"({dilations}); bind only one of them")
    return dilations


def stage_options(name: str, n_stages: int, channels, blocks_per_stage, dilations, kernel_size: int,
                  end_kernel: int, expansion: int, norm: str) -> tuple[list[int], list[int], int, int, int]:
    """The checked options shared by the TasNet encoder and decoder: (channels per stage, dilations per stage,
    kernel size, stem/output kernel size, expansion). Bad values fail here, before anything is built."""
    if int(expansion) < 1:
        raise ValueError(f"{name}.expansion must be >= 1, got {expansion}")
    make_norm(norm, 1)
    return (as_list(channels, n_stages, "channels"), block_dilations(blocks_per_stage, dilations),
            check_kernel(kernel_size), check_kernel(end_kernel), int(expansion))


def check_kernel(kernel_size: int) -> int:
    kernel_size = int(kernel_size)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (length-preserving 'same' padding), "
                         f"got {kernel_size}")
    return kernel_size
