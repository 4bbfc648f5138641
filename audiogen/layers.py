"""Building blocks shared by the convolutional coders."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResidualUnit(nn.Module):
    """Dilated conv -> 1x1 conv with a skip; length preserving ('same' padding)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),  # not in place: x is also the skip path
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=pad),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(channels, channels, 1),
        )
        self.kernel_size, self.dilation, self.padding = kernel_size, dilation, pad  # for Reach

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).add_(x)  # in place on a fresh tensor: one allocation less per unit


def as_list(value, n: int, what: str) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"{what} has {len(value)} entries but there are {n} stages")
    return value


class StridedConv(nn.Module):
    """Downsample by exactly ``stride``: T -> T / stride for T divisible by stride (kernel = overlap * stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int, overlap: int = 2):
        super().__init__()
        k = max(stride * overlap, 1)
        extra = k - stride
        # symmetric padding goes into the conv itself (no padded copy of the input); odd totals need F.pad
        self.pad = None if extra % 2 == 0 else (extra // 2, extra - extra // 2)
        self.conv = nn.Conv1d(c_in, c_out, k, stride=stride, padding=extra // 2 if self.pad is None else 0)
        self.kernel_size = k
        self.left_pad = extra // 2  # for Reach

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x if self.pad is None else F.pad(x, self.pad))


class StridedConvTranspose(nn.Module):
    """Upsample by exactly ``stride``: L -> L * stride."""

    def __init__(self, c_in: int, c_out: int, stride: int, overlap: int = 2):
        super().__init__()
        k = max(stride * overlap, 1)
        extra = k - stride
        self.crop = (extra // 2, extra - extra // 2)
        self.conv = nn.ConvTranspose1d(c_in, c_out, k, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y[..., self.crop[0]: y.shape[-1] - self.crop[1]]


def mlp(sizes, activation=nn.ELU, last_activation: bool = False) -> nn.Sequential:
    """Linear layers of widths ``sizes`` (input first) with ``activation`` between them."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def check_strides(strides, name: str = "strides") -> list[int]:
    """Strides as a non-empty list of positive ints, or a ValueError naming the option."""
    strides = [int(s) for s in strides]
    if not strides or any(s < 1 for s in strides):
        raise ValueError(f"{name} must be positive integers, got {strides}")
    return strides


def gaussian_head(x: Tensor, min_std: float) -> tuple[Tensor, Tensor]:
    """Split the last dim into (mean, std) with std = softplus(raw) + min_std (bounded below: no collapse)."""
    mean, raw = x.chunk(2, dim=-1)
    return mean, F.softplus(raw) + min_std


class Reach:
    """Which input samples an output position depends on, tracked through a stack of convolutions: output q reads
    samples [q * jump - left, q * jump + right] (zero padding at the edges of the signal aside)."""

    def __init__(self):
        self.left, self.right, self.jump = 0, 0, 1

    def conv(self, kernel: int, dilation: int = 1, stride: int = 1, left_pad: int = 0) -> None:
        self.left += left_pad * self.jump
        self.right += ((kernel - 1) * dilation - left_pad) * self.jump
        self.jump *= stride

    def blocks(self, blocks) -> None:
        """Length-preserving blocks with ``kernel_size``, ``dilation`` and ``padding`` (their left padding)."""
        for b in blocks:
            self.conv(b.kernel_size, b.dilation, 1, b.padding)

    @property
    def context(self) -> int:
        """Samples of context needed on either side of a frame (its own ``jump`` samples) for it to be exact."""
        return max(self.left, self.right - (self.jump - 1), 0)
