"""Log-mel features on the latent frame grid: the probe's baseline and the Fréchet distances of decoded audio."""

from __future__ import annotations

import math

import numpy as np
import torch


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1), each normalised to unit area so that
    narrow low-frequency filters are not drowned by wide ones."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges_hz = 700.0 * (10 ** (np.linspace(0.0, mel(sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    fb /= np.maximum(fb.sum(1, keepdims=True), 1e-10)
    return torch.from_numpy(fb).float()


def log_mel(audio: np.ndarray, sample_rate: int, hop: int, n_mels: int = 80) -> np.ndarray:
    """Log-mel spectrogram (n_mels, ceil(T / hop)), window 4 * hop (the paper: hop 64, window 256, 80 bins),
    frame k centred on sample k * hop + hop / 2 so that it covers the same span as latent frame k."""
    n_fft = 4 * hop
    x = torch.from_numpy(np.asarray(audio, np.float32))
    frames = math.ceil(len(x) / hop)
    # zero padding: each frame sees its own hop plus 1.5 hops of context on either side
    x = torch.nn.functional.pad(x, (n_fft // 2 - hop // 2, frames * hop - len(x) + n_fft // 2 + hop // 2))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=False, return_complex=True)
    power = spec.abs().pow(2)[:, :frames]
    return torch.log(mel_filterbank(sample_rate, n_fft, n_mels) @ power + 1e-6).numpy()
