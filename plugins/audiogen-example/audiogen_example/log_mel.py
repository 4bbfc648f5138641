"""A fixed (untrained, weightless) log-mel spectrogram encoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import Encoder


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    if isinstance(f, Tensor):
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_to_hz(m):
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_band_edges(n_mels: int, f_min: float, f_max: float) -> Tensor:
    """``n_mels + 2`` frequencies (Hz), equally spaced on the HTK mel scale; band k peaks at edge k + 1."""
    mels = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64)
    return mel_to_hz(mels)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0,
                   f_max: float | None = None) -> Tensor:
    """Triangular HTK mel filters (n_mels, n_fft // 2 + 1), each peaking at 1 on its centre frequency."""
    f_max = sample_rate / 2 if f_max is None else f_max
    edges = mel_band_edges(n_mels, f_min, f_max)  # (n_mels + 2,)
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)  # FFT bin centres
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lo) / (mid - lo)
    falling = (hi - freqs[None]) / (hi - mid)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMelEncoder(Encoder):
    """Fixed log-mel spectrogram (HTK mel filters on a Hann-windowed power STFT); no trainable weights."""

    # audiogen encode refuses untrained weights unless the encoder needs no checkpoint: this one never does.
    pretrained = True

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop: int = 256, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float | None = None, log_floor: float = 1e-5):
        super().__init__()
        sample_rate, n_fft, hop, n_mels = int(sample_rate), int(n_fft), int(hop), int(n_mels)
        f_max = sample_rate / 2 if f_max is None else float(f_max)
        if min(sample_rate, n_fft, hop, n_mels) < 1:
            raise ValueError("sample_rate, n_fft, hop and n_mels must be positive")
        if hop > n_fft:
            raise ValueError(f"hop {hop} must not exceed n_fft {n_fft} (frames would skip samples)")
        if not 0.0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, f_max={f_max}")
        if log_floor <= 0:
            raise ValueError(f"log_floor must be positive, got {log_floor}")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop = hop
        self.n_mels = n_mels
        self.latent_size = n_mels
        self.f_min, self.f_max = float(f_min), f_max
        self.log_floor = float(log_floor)
        # Each frame sees n_fft / 2 samples either side of its centre; n_fft is a safe bound for chunking.
        self.receptive_field = n_fft
        # Buffers, not parameters: nothing to train, and non-persistent so checkpoints do not carry them.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max),
                             persistent=False)

    @property
    def center_frequencies(self) -> Tensor:
        """Peak frequency (Hz) of each mel band."""
        return mel_band_edges(self.n_mels, self.f_min, self.f_max)[1:-1].float()

    def forward(self, audio: Tensor) -> Tensor:
        """(B, 1, T) -> (B, n_mels, ceil(T / hop)); frame i is centred on sample i * hop."""
        if audio.dim() != 3 or audio.shape[1] != 1:
            raise ValueError(f"expected audio of shape (B, 1, T), got {tuple(audio.shape)}")
        x = audio[:, 0].float()
        frames = math.ceil(x.shape[-1] / self.hop)
        if frames == 0:
            return x.new_zeros(x.shape[0], self.n_mels, 0)
        x = F.pad(x, (0, frames * self.hop - x.shape[-1]))  # a multiple of hop: exactly frames + 1 STFT frames
        spec = torch.stft(x, self.n_fft, hop_length=self.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)[..., :frames]  # drop centre=True's extra
        power = spec.real ** 2 + spec.imag ** 2  # (B, n_fft // 2 + 1, frames)
        mel = torch.matmul(self.filters, power)  # (B, n_mels, frames)
        return torch.log(torch.clamp(mel, min=self.log_floor))
