"""Encoder from an exported RAVE model (a ``.ts`` file), deterministic by default (the posterior mean)."""

from __future__ import annotations

import logging
import math

import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import Encoder
from audiogen.errors import ConfigError
from audiogen.rave.torchscript import chunked, load_rave, seeded

MODES = ("auto", "mean", "sample")
log = logging.getLogger("audiogen")


class RaveEncoder(Encoder):
    """Audio at the model's rate (B, 1, T) -> RAVE latents (B, latent_size, ceil(T / hop)).

    ``model_path``: a TorchScript file from RAVE's export; rate, hop and latent size are read from it.
    ``mode``: ``'mean'`` the posterior mean, PCA-projected like the export's ``encode`` (deterministic; needs an
    export that exposes its encoder, checked when loading); ``'sample'`` the export's own ``encode`` (a posterior
    sample); ``'auto'`` the mean when possible, else the sample. ``encoding_mode`` says which one is used.
    ``chunk_seconds``: inputs longer than this are encoded in chunks with measured context on both sides
    (``receptive_field``), equal to whole encoding in mean mode; None or 0 encodes whole. ``seed`` makes sample
    mode reproducible. Inputs are zero-padded to a multiple of ``hop`` (every frame sees a whole hop of signal).
    """

    pretrained = True
    batch_seconds = 12.0  # each call of the TorchScript export has a fixed cost; longer calls run no slower

    def __init__(self, model_path: str | None = None, mode: str = "auto", chunk_seconds: float | None = 30.0,
                 seed: int | None = None):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"encoders.rave.mode must be one of {', '.join(MODES)}, got {mode!r}",
                              fix="--bind \"encoders.rave.mode='auto'\"")
        rave = load_rave(model_path)
        if mode == "mean" and not rave.mean_available:
            raise ConfigError(f"{rave.path}: the posterior mean cannot be computed: {rave.mean_error}",
                              fix="--bind \"encoders.rave.mode='sample'\" (or 'auto') to use the export's encode")
        self.rave = rave
        self.model = rave.module  # registered so that .to(device) moves it
        self.hop, self.latent_size, self.sample_rate = rave.hop, rave.latent_size, rave.sample_rate
        self.encoding_mode = "mean" if mode != "sample" and rave.mean_available else "sample"
        self.fallback = mode == "auto" and self.encoding_mode == "sample"
        if self.fallback:  # loud: sampled latents carry noise and differ from run to run unless seeded
            log.warning("%s: posterior mean unavailable (%s); encoding posterior samples instead (%s)", rave.path,
                        rave.mean_error, "seeded" if seed is not None else
                        "unseeded: two encodes differ; bind encoders.rave.seed for reproducible shards")
        self.seed = seed
        self.receptive_field = rave.encoder_context(self.encoding_mode == "mean")
        self.chunk = None if not chunk_seconds or self.receptive_field is None else \
            max(self.hop, int(chunk_seconds * self.sample_rate) // self.hop * self.hop)

    def _encode(self, x: Tensor) -> Tensor:
        if self.encoding_mode == "mean":
            return self.rave.encode_mean(x)
        return self.rave.encode_sample(x)

    def forward(self, audio: Tensor) -> Tensor:
        frames = math.ceil(audio.shape[-1] / self.hop)
        if frames == 0:
            return audio.new_zeros(audio.shape[0], self.latent_size, 0)
        x = F.pad(audio, (0, frames * self.hop - audio.shape[-1]))
        with seeded(self.seed if self.encoding_mode == "sample" else None, like=x):
            z = chunked(self._encode, x, self.hop, self.chunk, self.receptive_field, 1 / self.hop)
        if z.shape[-1] != frames or z.shape[1] != self.latent_size:
            raise RuntimeError(f"{self.rave.path} encoded {x.shape[-1]} samples into {tuple(z.shape)}, expected "
                               f"{self.latent_size} x {frames} frames (hop {self.hop})")
        return z

    def describe(self) -> dict:
        """What ``audiogen encode`` records in the dataset's meta under ``encoder_info``."""
        return {**self.rave.describe(), "encoding_mode": self.encoding_mode,
                "mean_unavailable_because": self.rave.mean_error,
                "fell_back_to_sampling": self.fallback, "receptive_field": self.receptive_field,
                "chunk_samples": self.chunk, "seed": self.seed}
