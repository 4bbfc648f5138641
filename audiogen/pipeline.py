"""The unit every command builds: encoder -> prior -> decoder, composed by gin (``pipeline.*``)."""

from __future__ import annotations

import gin
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.errors import ConfigError


@gin.configurable("pipeline")
class Pipeline(nn.Module):
    """Holds the components; checks they fit together (hop, latent size, sample rate).

    Any part may be None: an autoencoder has no prior, a prior trained on a latent dataset has no encoder.
    """

    def __init__(self, encoder: nn.Module | None = None, decoder: nn.Module | None = None,
                 prior: nn.Module | None = None, objective: nn.Module | None = None):
        super().__init__()
        self.encoder, self.decoder, self.prior, self.objective = encoder, decoder, prior, objective
        if encoder is not None and decoder is not None:
            for attr in ("hop", "latent_size"):
                e, d = getattr(encoder, attr), getattr(decoder, attr)
                if e != d:
                    raise ConfigError(f"encoder {attr} {e} != decoder {attr} {d}",
                                      fix="bind the same value for both, e.g. with a gin macro")
        if prior is not None and encoder is not None and prior.latent_size != encoder.latent_size:
            raise ConfigError(f"prior latent_size {prior.latent_size} != encoder latent_size {encoder.latent_size}")

    @property
    def hop(self) -> int:
        part = self.encoder if self.encoder is not None else self.decoder
        return part.hop

    @property
    def latent_size(self) -> int:
        part = self.encoder if self.encoder is not None else (self.decoder or self.prior)
        return part.latent_size

    def reconstruct(self, audio: Tensor) -> Tensor:
        """Encode and decode audio (B, 1, T); output trimmed to T."""
        return self.decoder(self.encoder(audio))[..., : audio.shape[-1]]

    def autoencoder_loss(self, audio: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        if self.encoder is None or self.decoder is None:
            raise ConfigError("training an autoencoder needs pipeline.encoder and pipeline.decoder")
        if self.objective is None:
            raise ConfigError("pipeline.objective is not set", fix="bind e.g. pipeline.objective = @spectral_loss()")
        pad = (-audio.shape[-1]) % self.hop
        x = F.pad(audio, (0, pad))
        m = F.pad(mask, (0, pad)) if mask is not None else None
        recon = self.decoder(self.encoder(x))
        return self.objective(recon, x, m)

    @torch.no_grad()
    def encode(self, audio: Tensor) -> Tensor:
        return self.encoder(audio)

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        return self.decoder(latents)


def describe_pipeline(pipe: Pipeline, audio) -> dict:
    """Provenance recorded in every artifact made from this pipeline."""
    from audiogen.plugins import get_registry

    reg = get_registry()
    parts = {k: reg.describe(getattr(pipe, k)) for k in ("encoder", "decoder", "prior") if getattr(pipe, k) is not None}
    return {"components": parts, "sample_rate": audio.sample_rate, "hop": pipe.hop, "latent_size": pipe.latent_size,
            "audio": audio.as_dict()}


def build_pipeline() -> Pipeline:
    """``Pipeline()`` from the parsed gin config; a component that rejects its arguments is a ConfigError."""
    try:
        return Pipeline()
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("\n", "\n  ")
        raise ConfigError(f"cannot build the pipeline: {msg}", fix="check the gin files and --bind values") from None


def load_pipeline(ckpt_path=None, gin_files=(), bindings=(), base: str | None = None):
    """Build the gin-configured pipeline, optionally from a checkpoint (its operative config is parsed first,
    then ``gin_files`` and ``bindings``, then its weights are loaded). Returns (pipeline, checkpoint or None)."""
    from audiogen import config
    from audiogen.artifacts import load_checkpoint, strip_prefix

    ckpt = load_checkpoint(ckpt_path) if ckpt_path else None
    if ckpt is not None:
        base = ckpt["audiogen"]["operative_config"]
    if base is None and not gin_files and not bindings:
        raise ConfigError("nothing to build the pipeline from", fix="pass --ckpt RUN/model.ckpt or --gin CONFIG")
    config.parse(list(gin_files), list(bindings), base=base)
    pipe = build_pipeline()
    if ckpt is not None:
        state = strip_prefix(ckpt["state_dict"], "pipeline.")
        missing, unexpected = pipe.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"checkpoint {ckpt['path']} does not fit the configured pipeline "
                              f"(missing {missing[:4]}, unexpected {unexpected[:4]})",
                              fix="drop --gin/--bind options that change the architecture")
    return pipe.eval(), ckpt
