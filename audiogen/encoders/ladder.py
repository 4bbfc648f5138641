"""The pass shared by the staged ladder encoders (``encoders.conv1d``, ``encoders.tasnet``)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import Encoder
from audiogen.layers import check_strides


class LadderEncoder(Encoder):
    """stem -> stages (each downsampling by its stride) -> one head per level on the last ``levels`` stages.

    Level 1 is read after the first ``len(strides) - levels + 1`` stages (hop = their product), each further level
    after one more stage. Subclasses call ``_init_levels`` and build ``stem``, ``stages`` and ``heads``.
    """

    def _init_levels(self, strides, levels: int, name: str, front: int = 1) -> int:
        """Check and record the strides and levels; returns the number of stages before level 1's output.
        ``front``: the stem's own downsampling (a filter bank's bands), a factor of every level's hop."""
        strides = check_strides(strides, f"{name}.strides")
        if not 1 <= levels <= len(strides):
            raise ValueError(f"{name}.levels={levels} needs at least as many strides, got {strides}")
        base = len(strides) - levels + 1
        self.strides = strides
        self.num_levels = int(levels)
        self._level_hops = [front * math.prod(strides[: base + i]) for i in range(levels)]
        self.hop = self._level_hops[0]
        return base

    @property
    def level_hops(self) -> list[int]:
        return list(self._level_hops)

    @property
    def level_sizes(self) -> list[int]:
        return [self.latent_size] * self.num_levels

    def _run(self, audio: Tensor, all_levels: bool) -> list[Tensor]:
        n = audio.shape[-1]
        top = self._level_hops[-1] if all_levels else self.hop
        pad = (-n) % top
        h = self.stem(F.pad(audio, (0, pad)) if pad else audio)
        outs, base = [], len(self.strides) - self.num_levels + 1
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i >= base - 1:
                level = i - (base - 1)
                y = self.heads[level](h)
                # sliced only when padding added frames: a trace (``audiogen export``) then keeps no fixed length
                outs.append(y[..., : math.ceil(n / self._level_hops[level])] if n % self._level_hops[level] else y)
                if not all_levels:
                    break
        return outs

    def forward(self, audio: Tensor) -> Tensor:
        return self._run(audio, all_levels=False)[0]

    def encode_levels(self, audio: Tensor) -> list[Tensor]:
        return self._run(audio, all_levels=True)
