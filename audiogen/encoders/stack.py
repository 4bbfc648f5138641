"""Plain stacked waveform frames: the input representation of the paper's VRNN/SRNN/LSTM baselines."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import Encoder


class StackEncoder(Encoder):
    """Audio (B, 1, T) -> (B, stack, ceil(T / stack)): frame t holds samples [t*stack, (t+1)*stack) unchanged.

    No parameters. Frame-local, so autoregressive models may feed frame t-1 into the prediction of frame t
    without leaking frame t. The models learn their own feature network on top (phi_x).
    ``levels > 1`` makes it a ladder for hierarchical models: level l holds frames of ``stack * ratio**(l-1)``
    samples (a Clockwork VAE's posterior reads them through its own input layer), at no cost beside a reshape.
    """

    frame_local = True
    receptive_field = 0

    def __init__(self, stack: int = 64, levels: int = 1, ratio: int = 8):
        super().__init__()
        if int(stack) < 1:
            raise ValueError(f"encoders.stack.stack must be >= 1, got {stack!r}")
        if int(levels) < 1 or int(ratio) < 1:
            raise ValueError(f"encoders.stack.levels and ratio must be >= 1, got {levels!r}, {ratio!r}")
        self.hop = self.latent_size = int(stack)
        self._level_hops = [self.hop * int(ratio) ** i for i in range(int(levels))]

    @property
    def level_hops(self) -> list[int]:
        return list(self._level_hops)

    @property
    def level_sizes(self) -> list[int]:
        return list(self._level_hops)  # level l's frame is its hop's samples, unchanged

    @staticmethod
    def _frames(audio: Tensor, hop: int) -> Tensor:
        pad = (-audio.shape[-1]) % hop
        x = F.pad(audio, (0, pad)) if pad else audio
        return x.reshape(x.shape[0], -1, hop).transpose(1, 2)

    def forward(self, audio: Tensor) -> Tensor:
        return self._frames(audio, self.hop)

    def encode_levels(self, audio: Tensor) -> list[Tensor]:
        return [self._frames(audio, h) for h in self._level_hops]
