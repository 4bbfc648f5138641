"""``audiogen export --run RUN -o model.ts``: one TorchScript file for nn~ (Max/MSP, Pure Data), loadable with
``torch.jit.load`` alone.

- An autoencoder run (Conv1d or TasNet coders): methods ``encode``, ``decode``, ``forward``; the coders are
  traced (their code has no data-dependent branches once the input is padded to a multiple of the hop).
- A prior run: the autoencoder of its latent dataset (a RAVE export is embedded as it is; a Conv1d/TasNet run
  traced) with ``encode`` / ``decode`` / ``forward``, plus ``prior``: latent frames in, the prior's frames out at
  the autoencoder's scale (the dataset's normalisation statistics are inside), state kept between calls, and the
  attributes ``temperature``, ``listen`` and ``reset`` as caillonantoine/msprior's export has them.
The file records what made it in the string attribute ``audiogen_export`` (JSON).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.errors import ConfigError
from audiogen.nn_tilde import NnTildeModule

DEFAULT_STEPS = 10  # DDIM steps per DiffWave window: a few, for real-time use


class TracedCodec(nn.Module):
    """An audiogen encoder/decoder pair as traced TorchScript, with the hop padding done in script."""

    def __init__(self, encoder, decoder, hop: int, latent_size: int):
        super().__init__()
        self.hop = int(hop)
        # The coders' only length branches (padding to the hop) are constant once ``encode`` pads to a multiple of
        # the hop, which is what the trace records: its warnings about Python booleans say nothing to a user.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            self.encoder = torch.jit.trace(encoder.eval(), torch.zeros(1, 1, 16 * hop), check_trace=False)
            self.decoder = torch.jit.trace(decoder.eval(), torch.zeros(1, latent_size, 16), check_trace=False)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        pad = (self.hop - x.shape[-1] % self.hop) % self.hop
        return self.encoder(F.pad(x, [0, pad]))

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)


class AutoencoderExport(NnTildeModule):
    def __init__(self, codec: nn.Module, sample_rate: int, channels: int, latent_size: int, hop: int, record: str):
        super().__init__(sample_rate)
        self.codec = codec
        self.audiogen_export = record
        self.register_method("encode", channels, 1, latent_size, hop,
                             output_labels=[f"(signal) latent {i + 1}" for i in range(latent_size)])
        self.register_method("decode", latent_size, hop, 1, 1,
                             input_labels=[f"(signal) latent {i + 1}" for i in range(latent_size)])
        self.register_method("forward", channels, 1, 1, 1)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.codec.encode(x)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return self.codec.decode(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.codec.decode(self.codec.encode(x))


class PriorExport(AutoencoderExport):
    def __init__(self, codec, sample_rate, channels, latent_size, hop, record, generator: nn.Module,
                 mean: Tensor, std: Tensor):
        super().__init__(codec, sample_rate, channels, latent_size, hop, record)
        self.generator = generator
        self.register_buffer("latent_norm_mean", mean.float().reshape(1, -1, 1))
        self.register_buffer("latent_norm_std", std.float().reshape(1, -1, 1))
        labels = [f"(signal) latent {i + 1}" for i in range(latent_size)]
        self.register_method("prior", latent_size, hop, latent_size, hop, labels, labels)
        self.register_attribute("temperature", 1.0)
        self.register_attribute("listen", True)
        self.register_attribute("reset", False)

    @torch.jit.export
    def prior(self, x: Tensor) -> Tensor:
        """(B, latent_size, n) frames in the autoencoder's scale -> the prior's n frames, same scale."""
        if self.reset[0]:
            self.generator.reset(x.shape[0])
            self.reset = (False,)
        xn = (x - self.latent_norm_mean) / self.latent_norm_std
        y = self.generator(xn, self.listen[0], self.temperature[0])
        return y * self.latent_norm_std + self.latent_norm_mean

    @torch.jit.export
    def get_temperature(self) -> float:
        return self.temperature[0]

    @torch.jit.export
    def set_temperature(self, temperature: float) -> int:
        if temperature < 0:
            return -1
        self.temperature = (temperature,)
        return 0

    @torch.jit.export
    def get_listen(self) -> bool:
        return self.listen[0]

    @torch.jit.export
    def set_listen(self, listen: bool) -> int:
        self.listen = (listen,)
        return 0

    @torch.jit.export
    def get_reset(self) -> bool:
        return self.reset[0]

    @torch.jit.export
    def set_reset(self, reset: bool) -> int:
        self.reset = (reset,)
        return 0


def _codec(pipe, what: str):
    """(codec module, sample rate, input channels, latent size, hop) of an autoencoder pipeline (a RAVE model's
    sha256 is checked against the dataset's record by ``decoder_pipeline``)."""
    from audiogen.decoders.rave import RaveDecoder

    if isinstance(pipe.decoder, RaveDecoder):
        rave = pipe.decoder.rave
        rave.reset()
        return rave.module, rave.sample_rate, rave.in_channels, rave.latent_size, rave.hop
    from audiogen.settings import audio_settings_for

    if pipe.encoder is None or pipe.decoder is None or getattr(pipe.decoder, "out_channels", 1) != 1:
        raise ConfigError(f"{what} has no encoder and audio decoder to export",
                          fix="export an autoencoder run (pipelines/conv_ae.gin) or a prior trained on its latents")
    sr = audio_settings_for(pipe.decoder, "decoder").sample_rate
    return TracedCodec(pipe.encoder, pipe.decoder, pipe.hop, pipe.latent_size), sr, 1, pipe.latent_size, pipe.hop


def build_export(run, window: int | None = None, context: int | None = None, steps: int | None = None):
    """The scriptable nn~ module for a run folder or checkpoint, and the record written into it."""
    steps = DEFAULT_STEPS if steps is None else int(steps)
    from audiogen.artifacts import load_checkpoint, sha256_file, versions
    from audiogen.pipeline import load_pipeline

    ck = load_checkpoint(run)
    record = {"kind": None, "checkpoint": ck["path"], "checkpoint_sha256": sha256_file(Path(ck["path"])),
              "global_step": ck["audiogen"].get("global_step"), "components": ck["audiogen"].get("components"),
              "created_by": versions()}
    if ck["audiogen"].get("kind") != "prior":
        pipe, _ = load_pipeline(ck)
        if pipe.latent_model is not None or pipe.prior is not None:
            raise ConfigError(f"{ck['path']} is a temporal VAE: its generation runs through its decoder's output "
                              "distribution, which is not exported", fix="export an autoencoder or a prior run")
        codec, sr, ch, latent, hop = _codec(pipe, ck["path"])
        record.update(kind="autoencoder", sample_rate=sr, latent_size=latent, hop=hop)
        return AutoencoderExport(codec, sr, ch, latent, hop, json.dumps(record)), record
    from audiogen.export_steps import generator_for
    from audiogen.latents.decode import decoder_pipeline
    from audiogen.latents.record import LatentRecord

    rec = LatentRecord.from_prior(ck)
    prior_pipe, _ = load_pipeline(ck)
    prior = prior_pipe.prior
    if window is None:
        window = _crop_frames() or 64
    context = window // 4 if context is None else int(context)
    generator = generator_for(prior, int(window), context, int(steps))
    if not rec.decodable:
        raise ConfigError(f"{ck['path']}: the prior's dataset does not name the autoencoder that made its latents",
                          fix="train the prior on a latent dataset written by `audiogen encode`")
    codec, sr, ch, latent, hop = _codec(decoder_pipeline(rec), "the dataset's autoencoder")
    if latent != prior.latent_size:
        raise ConfigError(f"the prior models {prior.latent_size} dimensions but its dataset's autoencoder has "
                          f"{latent}", fix="train the prior on latents of this autoencoder")
    norm = rec.normalization
    mean = torch.tensor(norm["mean"]) if norm else torch.zeros(latent)
    std = torch.tensor(norm["std"]) if norm else torch.ones(latent)
    record.update(kind="prior", prior=type(prior).__name__, sample_rate=sr, latent_size=latent, hop=hop,
                  dataset=rec.dataset_path, normalized=norm is not None,
                  window_frames=int(window) if hasattr(generator, "window") else None,
                  context_frames=context if hasattr(generator, "window") else None,
                  ddim_steps=int(steps) if hasattr(generator, "window") else None)
    return PriorExport(codec, sr, ch, latent, hop, json.dumps(record), generator, mean, std), record


def _crop_frames() -> int | None:
    """``train_prior.crop_frames`` of the run (the window length its prior was trained on)."""
    import gin

    try:
        return int(gin.query_parameter("train_prior.crop_frames"))
    except (ValueError, TypeError):
        return None
