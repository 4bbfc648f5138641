"""Per-frame MLP decoder: each latent frame -> the output distribution's parameters for its ``hop`` samples."""

from __future__ import annotations

from torch import Tensor, nn

from audiogen.contracts import Decoder


class DenseDecoder(Decoder):
    """(B, latent_size, L) -> (B, out_channels, L * hop) by an MLP applied to every frame independently.

    Frame-local (frame t's samples read only latent frame t), as the paper's VRNN/SRNN/LSTM output networks, and
    what autoregressive pipelines need to sample frame by frame. ``hidden`` lists the hidden layer widths.
    """

    frame_local = True

    def __init__(self, hop: int = 64, latent_size: int = 256, out_channels: int = 1, hidden=(256,)):
        super().__init__()
        self.hop, self.latent_size, self.out_channels = int(hop), int(latent_size), int(out_channels)
        layers, c = [], self.latent_size
        for h in hidden:
            layers += [nn.Conv1d(c, int(h), 1), nn.GELU()]
            c = int(h)
        layers.append(nn.Conv1d(c, self.out_channels * self.hop, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        B, _, L = latents.shape
        y = self.net(latents).view(B, self.out_channels, self.hop, L)  # channel-major: (param, sample in frame)
        y = y.transpose(2, 3).reshape(B, self.out_channels, L * self.hop)
        return y.tanh() if self.out_channels == 1 else y
