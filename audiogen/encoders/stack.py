"""Plain stacked waveform frames: the input representation of the paper's VRNN/SRNN/LSTM baselines."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import Encoder


class StackEncoder(Encoder):
    """Audio (B, 1, T) -> (B, stack, ceil(T / stack)): frame t holds samples [t*stack, (t+1)*stack) unchanged.

    No parameters. Frame-local, so autoregressive models may feed frame t-1 into the prediction of frame t
    without leaking frame t. The models learn their own feature network on top (phi_x).
    """

    frame_local = True
    receptive_field = 0

    def __init__(self, stack: int = 64):
        super().__init__()
        if int(stack) < 1:
            raise ValueError(f"encoders.stack.stack must be >= 1, got {stack!r}")
        self.hop = self.latent_size = int(stack)

    def forward(self, audio: Tensor) -> Tensor:
        pad = (-audio.shape[-1]) % self.hop
        x = F.pad(audio, (0, pad)) if pad else audio
        B = x.shape[0]
        return x.reshape(B, -1, self.hop).transpose(1, 2)
