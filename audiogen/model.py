"""The Pipeline (gin ``pipeline.*``): the components of a run, the checks that they fit together, and the
losses each kind of run trains. Building it from a config or a checkpoint: ``audiogen.pipeline``."""

from __future__ import annotations

import gin
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.errors import ConfigError


@gin.configurable("pipeline")
class Pipeline(nn.Module):
    """Holds the components and checks that they fit together (hops, sizes, parameter counts).

    Two shapes of pipeline:
    - autoencoder: ``encoder`` -> ``decoder`` (audio out), trained with ``objective`` (e.g. ``spectral_loss``);
    - temporal VAE: coded audio -> ``encoder`` (one representation per level) -> ``latent_model`` (e.g. the Clockwork
      VAE) -> ``decoder`` (distribution parameters) -> ``distribution`` over the ``coding``'s grid, trained with
      ``objective = @elbo()``;
    - encoder pretraining: coded audio (if ``coding`` is set) -> ``encoder``, no decoder, trained with a contrastive
      ``objective`` (one with ``contrastive = True``, e.g. ``@infonce()`` for CPC).
    ``prior`` is a model of latent sequences for two-stage pipelines. Any part may be None.
    """

    def __init__(self, encoder: nn.Module | None = None, decoder: nn.Module | None = None,
                 prior: nn.Module | None = None, objective=None, latent_model: nn.Module | None = None,
                 distribution: nn.Module | None = None, coding=None):
        super().__init__()
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.latent_model, self.distribution, self.coding = latent_model, distribution, coding
        self.objective = objective
        if latent_model is not None:
            self._check_temporal_vae()
        elif encoder is not None and decoder is not None:
            self._check_equal("encoder", encoder, "decoder", decoder, ("hop", "latent_size"))
        elif getattr(objective, "contrastive", False):
            objective.check_encoder(encoder)  # sizes of its predictors against the encoder's (a ConfigError)
        if prior is not None and encoder is not None and prior.latent_size != encoder.latent_size:
            raise ConfigError(f"prior latent_size {prior.latent_size} != encoder latent_size {encoder.latent_size}")

    @staticmethod
    def _check_equal(na, a, nb, b, attrs) -> None:
        for attr in attrs:
            x, y = getattr(a, attr), getattr(b, attr)
            if x != y:
                raise ConfigError(f"{na} {attr} {x} != {nb} {attr} {y}",
                                  fix="bind the same value for both, e.g. with a gin macro")

    def _check_temporal_vae(self) -> None:
        enc, lm, dec, dist, coding = self.encoder, self.latent_model, self.decoder, self.distribution, self.coding
        missing = [n for n, v in (("encoder", enc), ("decoder", dec), ("distribution", dist), ("coding", coding))
                   if v is None]
        if missing:
            raise ConfigError(f"a temporal VAE pipeline needs pipeline.{', pipeline.'.join(missing)}")
        strides = [h // enc.hop for h in enc.level_hops]
        if strides != list(lm.level_strides) or list(enc.level_sizes) != list(lm.input_sizes):
            raise ConfigError(f"encoder levels (strides {strides}, sizes {list(enc.level_sizes)}) do not match the "
                              f"latent model (strides {list(lm.level_strides)}, sizes {list(lm.input_sizes)})",
                              fix="give the encoder one level per latent level (e.g. encoders.conv1d.levels) "
                                  "and the same ratio between levels")
        self._check_equal("encoder", enc, "decoder", dec, ("hop",))
        if getattr(lm, "autoregressive", False):
            self._check_autoregressive(enc, lm, dec)
        if dec.latent_size != lm.context_size:
            raise ConfigError(f"decoder latent_size {dec.latent_size} != latent model context_size {lm.context_size}")
        if dec.out_channels != dist.num_params:
            raise ConfigError(f"decoder out_channels {dec.out_channels} != {type(dist).__name__} num_params "
                              f"{dist.num_params}", fix=f"bind decoders.<name>.out_channels = {dist.num_params}")
        if getattr(dist, "is_binary", False):
            raise ConfigError(f"{type(dist).__name__} is a distribution over binary data, not audio samples",
                              fix="use a discretized distribution such as distributions.dmol for audio")
        bits = getattr(dist, "bits", None)
        if bits is not None and bits != coding.bits:
            raise ConfigError(f"distribution bits {bits} != input coding bits {coding.bits}")

    @staticmethod
    def _check_autoregressive(enc, lm, dec) -> None:
        """The prediction of frame t reads frames < t through the encoder, so the encoder must not look ahead
        (else frame t leaks into its own prediction and the likelihood is wrong); frame-by-frame sampling needs
        a decoder that turns one latent frame into that frame's samples."""
        name = type(lm).__name__
        for part, what in ((enc, "encoder"), (dec, "decoder")):
            if not getattr(part, "frame_local", False):
                raise ConfigError(f"{name} is autoregressive but the {what} {type(part).__name__} is not frame-local "
                                  f"(its frame t reads neighbouring frames, which would leak the frame being "
                                  f"predicted into its own prediction)",
                                  fix="use pipeline.encoder = @encoders.stack() and pipeline.decoder = "
                                      "@decoders.dense() (see pipelines/vrnn_speech.gin)")
        if len(enc.level_hops) != 1:
            raise ConfigError(f"{name} reads one encoder level, the encoder gives {len(enc.level_hops)}",
                              fix="bind encoders.<name>.levels = 1")

    @property
    def hop(self) -> int:
        part = self.encoder if self.encoder is not None else self.decoder
        return part.hop

    @property
    def frame_hop(self) -> int:
        """Samples per step of the slowest level (inputs are padded to a multiple of it)."""
        return self.encoder.level_hops[-1] if self.latent_model is not None else self.hop

    @property
    def latent_size(self) -> int:
        part = self.encoder if self.encoder is not None else (self.decoder or self.prior)
        return part.latent_size

    # ------------------------------------------------------------------------------------------- autoencoder
    def reconstruct(self, audio: Tensor) -> Tensor:
        """Encode and decode audio (B, 1, T); output trimmed to T."""
        if self.latent_model is not None:
            return self.vae_reconstruct(audio)
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

    def contrastive_loss(self, audio: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        """Self-supervised encoder pretraining (e.g. CPC's InfoNCE; no decoder): the objective reads the encoder on
        the coded audio, the domain a temporal VAE feeds its encoder, with a frame mask that is False on every frame
        holding a padded sample."""
        x, m = self.pad(audio, mask)  # frame_hop == hop without a latent model
        y = self.coding.encode(x).to(x.dtype) if self.coding is not None else x
        return self.objective(self.encoder, y, m.view(m.shape[0], -1, self.hop).all(-1))

    def training_loss(self, audio: Tensor, mask: Tensor, step: int) -> dict[str, Tensor]:
        if self.latent_model is None:
            if self.decoder is None and getattr(self.objective, "contrastive", False):
                return self.contrastive_loss(audio, mask)
            return self.autoencoder_loss(audio, mask)
        out = self.score(audio, mask)
        logs = self.objective(out, step)
        for i, mean in enumerate(out["posterior_mean"]):
            logs[f"active_z{i + 1}"] = active_units(mean, out["level_masks"][i]).float().sum()
        return logs

    # ------------------------------------------------------------------------------------------ temporal VAE
    def pad(self, audio: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if mask is None:
            mask = torch.ones(audio.shape[0], audio.shape[-1], dtype=torch.bool, device=audio.device)
        pad = (-audio.shape[-1]) % self.frame_hop
        return F.pad(audio, (0, pad)), F.pad(mask, (0, pad))

    def score(self, audio: Tensor, mask: Tensor | None = None, state=None, sample: bool = True) -> dict:
        """Terms of the ELBO for audio (B, 1, T) in [-1, 1]: rec (B,) = log p(x | z) over valid samples (nats, on
        the coding's exact grid), kl per level (B, D_l, L_l) masked, level masks, samples (B,), state."""
        x, mask = self.pad(audio, mask)
        y = self.coding.encode(x).to(x.dtype)  # exact b-bit grid values in the model domain
        out = self.latent_model(self.encoder.encode_levels(y), state=state, sample=sample)
        params = self.decoder(out.context)
        lp = self.distribution.log_prob(params, y)[:, 0]
        rec = torch.where(mask, lp, torch.zeros_like(lp)).sum(1)
        level_masks = [mask[:, :: h][:, : k.shape[-1]] for h, k in zip(self.encoder.level_hops, out.kl)]
        kl = [k * m[:, None, :] for k, m in zip(out.kl, level_masks)]
        log_ratio = [r * m[:, None, :] for r, m in zip(out.log_ratio, level_masks)] if out.log_ratio else None
        return {"rec": rec, "kl": kl, "level_masks": level_masks, "samples": mask.sum(1),
                "level_strides": list(self.latent_model.level_strides), "posterior_mean": out.posterior_mean,
                "state": out.state, "params": params, "log_ratio": log_ratio}

    @torch.no_grad()
    def vae_reconstruct(self, audio: Tensor, mean: bool = False) -> Tensor:
        """Posterior reconstruction: decode a posterior sample path, then sample the output distribution (or take
        its mean: for mu-law audio the mean of a broad sign-symmetric prediction is close to silence)."""
        out = self.score(audio, sample=not mean)
        params = out["params"]
        y = self.distribution.mean(params) if mean else self.distribution.sample(params)
        return self.coding.decode(y)[..., : audio.shape[-1]].to(audio.dtype)

    @torch.no_grad()
    def generate(self, n: int, num_samples: int, mean: bool = False) -> Tensor:
        """Unconditional audio (n, 1, num_samples) from the latent model's prior."""
        frames = -(-num_samples // self.hop)
        if getattr(self.latent_model, "autoregressive", False):
            y = self._generate_autoregressive(n, frames, mean)
        else:
            context, _ = self.latent_model.generate(n, frames)
            params = self.decoder(context)
            y = self.distribution.mean(params) if mean else self.distribution.sample(params)
        return self.coding.decode(y)[..., :num_samples].float()

    def _generate_autoregressive(self, n: int, frames: int, mean: bool) -> Tensor:
        """Frame by frame: context from the model given x_{<t}, decode, draw x_t on the coding's grid, encode it
        as the next input (the same path as teacher-forced training, so sampling matches the scored model)."""
        lm, enc = self.latent_model, self.encoder
        device = next(self.parameters()).device
        prev, state, out = torch.zeros(n, enc.latent_size, device=device), None, []
        from audiogen.progress import bar

        for _ in bar(range(frames), desc="sample", unit="frame"):
            context, state = lm.step(prev, state)
            params = self.decoder(context[..., None])  # (n, P, hop)
            y = self.distribution.mean(params) if mean else self.distribution.sample(params)
            out.append(y)
            prev = enc(y)[..., 0]
        return torch.cat(out, -1)


def active_units(posterior_mean: Tensor, mask: Tensor, threshold: float = 0.01) -> Tensor:
    """Units whose posterior mean varies across the data (Burda et al.: Cov_x E_q[z_u] > 0.01). (D,) bool."""
    m = mask[:, None, :].to(posterior_mean.dtype)
    n = m.sum().clamp_min(1)
    mean = (posterior_mean * m).sum((0, 2)) / n
    var = (((posterior_mean - mean[None, :, None]) ** 2) * m).sum((0, 2)) / n
    return var > threshold
