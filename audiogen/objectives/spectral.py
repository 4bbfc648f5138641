"""A multi-scale spectral reconstruction loss for autoencoders (gin ``spectral_loss``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MultiScaleSpectralLoss(nn.Module):
    """Sum over STFT sizes of L1 between log magnitudes plus spectral convergence, plus ``wave_weight`` x L1
    on the waveform. Padded samples (mask False) are zeroed in both signals so padding costs nothing."""

    def __init__(self, scales=(2048, 1024, 512, 256, 128), overlap: float = 0.75, wave_weight: float = 1.0,
                 eps: float = 1e-5):
        super().__init__()
        self.scales = [int(s) for s in scales]
        self.overlap = overlap
        self.wave_weight = wave_weight
        self.eps = eps
        for s in self.scales:
            self.register_buffer(f"window_{s}", torch.hann_window(s), persistent=False)

    def forward(self, recon: Tensor, target: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        if mask is not None:
            m = mask.unsqueeze(1).to(recon.dtype)
            recon, target = recon * m, target * m
        x, y = recon.flatten(0, 1), target.flatten(0, 1)
        spectral = recon.new_zeros(())
        for s in self.scales:
            if x.shape[-1] < s:
                continue
            hop = max(1, int(s * (1 - self.overlap)))
            win = getattr(self, f"window_{s}")
            X = torch.stft(x, s, hop, window=win, return_complex=True).abs()
            Y = torch.stft(y, s, hop, window=win, return_complex=True).abs()
            log_l1 = (torch.log(X + self.eps) - torch.log(Y + self.eps)).abs().mean()
            # spectral convergence per item, then averaged: a batch-wide ratio would change with how the batch is
            # split (data-parallel ranks, gradient accumulation)
            conv = (torch.linalg.norm(Y - X, dim=(-2, -1)) / (torch.linalg.norm(Y, dim=(-2, -1)) + self.eps)).mean()
            spectral = spectral + log_l1 + conv
        wave = (recon - target).abs().mean()
        return {"loss": spectral + self.wave_weight * wave, "spectral": spectral, "wave_l1": wave}
