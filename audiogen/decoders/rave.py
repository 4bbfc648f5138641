"""Decoder from an exported RAVE model (a ``.ts`` file)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiogen.contracts import Decoder
from audiogen.rave.torchscript import chunked, load_rave, seeded


class RaveDecoder(Decoder):
    """RAVE latents (B, latent_size, L) -> audio (B, 1, L * hop) at the model's rate, by the export's ``decode``.

    Decoding is random: the export fills the ``full_latent_size - latent_size`` dimensions dropped by its PCA
    truncation with N(0, 1) noise, and RAVE v2 generators add filtered noise. ``seed`` (an int) seeds every call,
    so the same latents decode to the same audio (the global generator is left as it was); None draws fresh noise.
    Latent sequences longer than ``chunk_seconds`` are decoded in chunks with measured context on both sides (the
    deterministic part equals whole decoding; the noise differs). Multichannel exports are mixed down to mono.
    ``compensate_latency``: shift the output back by the export's measured lag (``RaveModel.latency``, about a hop
    for causal exports), decoding as many frames more (the last one repeated) so that the file's end is not cut.
    """

    pretrained = True
    out_channels = 1

    def __init__(self, model_path: str | None = None, chunk_seconds: float | None = 30.0, seed: int | None = None,
                 compensate_latency: bool = True):
        super().__init__()
        rave = load_rave(model_path)
        self.rave = rave
        self.model = rave.module
        self.hop, self.latent_size, self.sample_rate = rave.hop, rave.latent_size, rave.sample_rate
        self.seed = seed
        # a causal export's output lags its input: decode a few frames more (the last frame repeated) and drop the lag
        self.latency = rave.latency() if compensate_latency else 0
        self.context_frames = rave.decoder_context()
        self.chunk_frames = None if not chunk_seconds or self.context_frames is None else \
            max(1, int(chunk_seconds * self.sample_rate) // self.hop)

    def describe(self) -> dict:
        """Which model file (path, sha256) this decoder reads: checked against a latent dataset's record."""
        return self.rave.describe()

    def _decode(self, z: Tensor) -> Tensor:
        y = self.rave.decode(z)
        n = z.shape[-1] * self.hop
        if y.shape[-1] < n:
            raise RuntimeError(f"{self.rave.path} decoded {z.shape[-1]} frames into {y.shape[-1]} samples, "
                               f"expected {n} (hop {self.hop})")
        return y[..., :n]

    def forward(self, latents: Tensor) -> Tensor:
        if latents.dim() != 3 or latents.shape[1] != self.latent_size:
            raise ValueError(f"RAVE decoder of {self.rave.path} takes (B, {self.latent_size}, L) latents, "
                             f"got {tuple(latents.shape)}")
        if latents.shape[-1] == 0:
            return latents.new_zeros(latents.shape[0], 1, 0)
        n = latents.shape[-1] * self.hop
        if self.latency:
            extra = math.ceil(self.latency / self.hop)
            latents = torch.cat([latents, latents[..., -1:].expand(-1, -1, extra)], -1)
        with seeded(self.seed, like=latents):
            y = chunked(self._decode, latents, 1, self.chunk_frames, self.context_frames, self.hop)
        return y[..., self.latency: self.latency + n]
