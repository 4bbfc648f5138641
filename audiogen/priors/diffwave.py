"""DiffWave (Kong et al. 2021) as a prior over latent sequences x (B, C, L), gin ``priors.diffwave``.

The network predicts the noise added to x at a diffusion step: a stack of residual blocks (step embedding added,
dilated conv to 2C channels plus an optional conditioner projection, gated tanh * sigmoid, 1x1 conv split into a
residual scaled by 1/sqrt(2) and a skip), skips summed and scaled by 1/sqrt(layers), a zero-initialised output.

Inputs are expected normalised per channel (the training command applies the dataset statistics and undoes them
on samples). Options from the lab diary of a RAVE -> DiffWave latent bridge, where the plain model's loss stayed
at 0.8 whatever the size or learning rate:
- ``flatten``: model the C channels as one interleaved sequence of length L * C with one input channel (loss 0.65;
  with 500-1000 diffusion steps 0.2-0.25);
- ``batchnorm``: batch-normalise each block's residual output (the change that finally helped);
- ``cond_channels``: an optional conditioner (B, cond_channels, L), whose contribution's scale is logged, since
  there it was far below the input's and had no effect.
A diffusion model has no exact likelihood here: ``log_prob`` raises, ``has_likelihood`` is False.
"""

from __future__ import annotations

import copy
import logging
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audiogen.contracts import Prior, PriorOutput
from audiogen.errors import ConfigError
from audiogen.priors import samplers
from audiogen.schedules import alpha_bars, as_betas, fractional_steps, validate_betas

log = logging.getLogger("audiogen")

TABLE_DIM = 128  # 64 sines + 64 cosines, frequencies 10^0 .. 10^4 as in DiffWave
EMBED_DIM = 512
DIFFWAVE_FAST_BETAS = (1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5)
COND_SCALE_WARN = 0.01  # conditioner RMS / RMS of what it is added to; below this it is unlikely to matter


def _conv(c_in: int, c_out: int, kernel: int = 1, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    conv = nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, bias=bias)
    nn.init.kaiming_normal_(conv.weight)  # DiffWave's initialisation of every conv
    return conv


class StepEmbedding(nn.Module):
    """Diffusion step -> (N, 512): a sinusoid table row, then two Linear + SiLU layers.

    Fractional steps (fast sampling) interpolate linearly between the two neighbouring table rows."""

    def __init__(self, num_steps: int):
        super().__init__()
        steps = torch.arange(num_steps, dtype=torch.float32)[:, None]
        freqs = 10.0 ** (torch.arange(TABLE_DIM // 2, dtype=torch.float32) * 4.0 / (TABLE_DIM // 2 - 1))
        angles = steps * freqs
        # derived from num_steps, so not stored in checkpoints
        self.register_buffer("table", torch.cat([angles.sin(), angles.cos()], 1), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(TABLE_DIM, EMBED_DIM), nn.SiLU(), nn.Linear(EMBED_DIM, EMBED_DIM),
                                 nn.SiLU())

    def lookup(self, t: Tensor) -> Tensor:
        if not t.is_floating_point():
            return self.table[t]
        lo = t.floor().long().clamp(0, len(self.table) - 1)
        hi = t.ceil().long().clamp(0, len(self.table) - 1)
        w = (t - lo).to(self.table.dtype)[:, None]
        return torch.lerp(self.table[lo], self.table[hi], w)

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(self.lookup(t))


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics skip padded positions (mask False), so that padding changes nothing
    about the real frames. Eval mode uses the running statistics, as BatchNorm1d does."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None or not self.training:
            return super().forward(x)
        w = mask.to(x.dtype)  # (B, 1, L)
        n = w.sum() * 1.0
        mean = (x * w).sum((0, 2)) / n
        var = ((x - mean[:, None]).pow(2) * w).sum((0, 2)) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            unbiased = var * (n / (n - 1).clamp_min(1))
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)
        y = (x - mean[:, None]) * torch.rsqrt(var[:, None] + self.eps)
        return y * self.weight[:, None] + self.bias[:, None]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, batchnorm: bool):
        super().__init__()
        self.dilation = dilation
        self.dilated = _conv(channels, 2 * channels, 3, dilation)
        self.out = _conv(channels, 2 * channels, 1)
        self.norm = MaskedBatchNorm1d(channels) if batchnorm else None

    def forward(self, x: Tensor, step: Tensor, cond: Tensor | None, mask: Tensor | None, stats: list | None):
        y = x + step
        if self.dilation >= y.shape[-1]:
            # both outer taps read only zero padding: the centre tap alone gives the same result at a third of
            # the cost (the upper layers of each dilation cycle on short latent sequences)
            y = F.conv1d(y, self.dilated.weight[:, :, 1:2], self.dilated.bias)
        else:
            y = self.dilated(y)
        if cond is not None:
            if stats is not None:
                stats.append(y.detach().pow(2).mean())
            y = y.add_(cond)  # in place: autograd keeps conv inputs, not outputs
        gate, filt = y.chunk(2, 1)
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, 1)
        x = torch.add(x, res).mul_(1 / math.sqrt(2))  # one fresh tensor instead of two
        if self.norm is not None:
            x = self.norm(x, mask)
        return x, skip


class DiffWaveNet(nn.Module):
    """Noise predictor: (B, in_channels, L), step (B,) or (1,), optional conditioner -> (B, in_channels, L)."""

    def __init__(self, in_channels: int, layers: int, channels: int, cycle: int, num_steps: int,
                 cond_channels: int, batchnorm: bool):
        super().__init__()
        self.layers, self.channels = layers, channels
        self.embedding = StepEmbedding(num_steps)
        # every block's projection of the step embedding (DiffWave's per-block Linear(512, C)), as one matmul
        self.step_proj = nn.Linear(EMBED_DIM, layers * channels)
        self.inp = _conv(in_channels, channels)
        # every block's conditioner projection (per-block 1x1 conv to 2C), as one conv: the conditioner is the same
        # for all blocks, and for all steps of sampling, where it is projected once. No bias: the dilated conv's
        # bias already offsets the same sum, and without one the logged scale is the conditioner's alone.
        self.cond_proj = _conv(cond_channels, layers * 2 * channels, bias=False) if cond_channels else None
        self.blocks = nn.ModuleList(ResidualBlock(channels, 2 ** (i % cycle), batchnorm) for i in range(layers))
        self.skip_out = _conv(channels, channels)
        self.out = _conv(channels, in_channels)
        nn.init.zeros_(self.out.weight)  # start by predicting zero noise (DiffWave zeroes the weight only)
        nn.init.zeros_(self.out.bias)
        self.last_cond_ratio: Tensor | None = None  # per block, set by forward(track_cond=True)

    def project_cond(self, cond: Tensor) -> list[Tensor]:
        return list(self.cond_proj(cond).chunk(self.layers, 1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None, mask: Tensor | None = None,
                cond_proj: list[Tensor] | None = None, track_cond: bool = False) -> Tensor:
        """``mask`` (B, 1, L) float or None; ``cond_proj`` is ``project_cond(cond)`` computed in advance;
        ``track_cond`` sets ``last_cond_ratio`` (the conditioner's scale per block)."""
        if cond is not None and cond_proj is None:
            cond_proj = self.project_cond(cond)
        steps = self.step_proj(self.embedding(t)).view(-1, self.layers, self.channels, 1)
        h = F.relu(self.inp(x))
        stats = [] if (track_cond and cond_proj is not None) else None
        self.last_cond_ratio = None
        skips = None
        for i, block in enumerate(self.blocks):
            h, skip = block(h, steps[:, i], None if cond_proj is None else cond_proj[i], mask, stats)
            # a running sum (no stack of every layer's skips), accumulated in place from the second block on
            skips = skip if i == 0 else skips + skip if i == 1 else skips.add_(skip)
        if stats is not None:
            cond_ms = torch.stack([c.detach().pow(2).mean() for c in cond_proj])
            self.last_cond_ratio = (cond_ms / torch.stack(stats).clamp_min(1e-12)).sqrt()
        scale = 1 / math.sqrt(self.layers)
        skips = skips * scale if self.layers == 1 else skips.mul_(scale)  # one block: skips is still a view
        h = F.relu(self.skip_out(skips), inplace=True)
        return self.out(h)


class DiffWavePrior(Prior):
    """DiffWave over latent sequences (B, C, L): denoising training loss, ancestral / fast / DDIM sampling.

    The defaults are DiffWave's base configuration (lmnt-com/diffwave params.py) and the one place they are set
    (``gin/priors/diffwave.gin`` binds only the latent size and the schedule):

    - ``residual_layers`` 30, ``residual_channels`` 64, ``dilation_cycle`` 10 (dilations 1, 2, ..., 512, three times);
    - ``schedule``: the training noise schedule (None: ``schedules.linear`` at its defaults, DiffWave's 50 betas
      from 1e-4 to 0.05); ``loss``: ``'l1'`` on the predicted noise as DiffWave, ``'l2'`` is the DDPM loss;
    - ``flatten``: model the C latent channels as one interleaved sequence (length L * C, one input channel) instead
      of C input channels. In the diary the plain model's loss stayed at 0.8 whatever the size or learning rate;
      flattening was the first change that moved it (0.65);
    - ``batchnorm``: batch-normalise each residual block's output (running statistics when sampling), the diary's
      other change that helped (batch norm before every activation instead stopped the loss from going down);
    - ``cond_channels``: 0 is unconditional; K > 0 takes a conditioner (B, K, L) in ``training_loss`` and
      ``sample``. Its scale relative to the signal it is added to is logged as ``cond_scale``, with a warning below
      0.01: in the diary a conditioner far smaller than the input had no effect on the samples;
    - ``ema``: decay of an exponential moving average of the weights (0: none); sampling uses the averaged weights
      and checkpoints hold them. The training loop calls ``update_ema()`` after each optimiser step;
    - ``sampler``: ``'ancestral'`` (all training steps), ``'fast'`` (DiffWave's short schedule ``fast_betas``, each
      step placed on the training schedule by matching alpha-bar) or ``'ddim'`` (``sample_steps`` evenly spaced
      training steps, deterministic at ``ddim_eta`` 0; with 50 training steps, 50 is all of them);
    - ``clip``: clamp samples to [-clip, clip] as DiffWave does for audio (None: no clamp). On raw latents that clamp
      is the diary's silent decode; it exists to reproduce that failure, not to be used.
    """

    has_likelihood = False

    def __init__(self, latent_size: int = 8, residual_layers: int = 30, residual_channels: int = 64,
                 dilation_cycle: int = 10, schedule=None, loss: str = "l1", batchnorm: bool = False,
                 flatten: bool = False, cond_channels: int = 0, ema: float = 0.0, sampler: str = "ddim",
                 sample_steps: int = 50, fast_betas=DIFFWAVE_FAST_BETAS, ddim_eta: float = 0.0,
                 clip: float | None = None):
        super().__init__()
        # DiffWave clamps its output to the audio range [-1, 1]; on latents that is the diary's silent decode
        # (generated latents confined to +-1 while the encoder's span +-4). Kept as an option to reproduce it.
        self.clip = None if clip is None else float(clip)
        if loss not in ("l1", "l2"):
            raise ConfigError(f"priors.diffwave.loss = {loss!r} is not one of 'l1', 'l2'",
                              fix="set priors.diffwave.loss = 'l1' (DiffWave's) or 'l2'")
        if not 0 <= ema < 1:
            raise ConfigError(f"priors.diffwave.ema = {ema!r} must be in [0, 1)",
                              fix="use 0 for no EMA, or a decay such as 0.999")
        self.latent_size = int(latent_size)
        self.flatten, self.loss, self.cond_channels = bool(flatten), loss, int(cond_channels)
        if int(sample_steps) < 1 or ddim_eta < 0:
            raise ConfigError(f"priors.diffwave: sample_steps = {sample_steps!r} and ddim_eta = {ddim_eta!r} must be "
                              "at least 1 and 0", fix="e.g. sample_steps = 50, ddim_eta = 0.0")
        self.sampler, self.sample_steps, self.ddim_eta = self._check_sampler(sampler), int(sample_steps), ddim_eta
        # the schedule's gin name (set when gin built it): warnings and errors name the schedule in use
        self.schedule_name = "schedules.linear" if schedule is None else getattr(schedule, "audiogen_component", None)
        self.schedule_steps = getattr(schedule, "steps", None)
        where = "priors.diffwave.schedule" + (f" ({self.schedule_name})" if self.schedule_name else "")
        # float64 and in the state dict: a checkpoint records the schedule its network was trained on
        self.register_buffer("betas", as_betas(schedule, where))
        self.fast_betas = validate_betas(fast_betas, "priors.diffwave.fast_betas")
        if self.sampler == "fast":  # fail now rather than at the first sampling
            fractional_steps(self.betas, self.fast_betas)
        self.in_channels = 1 if self.flatten else self.latent_size
        self.net = DiffWaveNet(self.in_channels, int(residual_layers), int(residual_channels), int(dilation_cycle),
                               self.num_steps, self.cond_channels, bool(batchnorm))
        self.ema_decay = float(ema)
        self.ema_net = self._frozen_copy(self.net) if self.ema_decay else None
        if self.ema_net is not None:
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self._cond_warned = False

    @property
    def num_steps(self) -> int:
        return len(self.betas)

    def config_warnings(self) -> list[str]:
        """Settings that train fine but sample badly: sampling starts from pure noise, so the schedule must destroy
        the signal by step T (DiffWave's 50 steps to 0.05 leave half of it: alpha-bar 0.28)."""
        ab = float(alpha_bars(self.betas)[-1])
        if ab <= 0.01:
            return []
        name = self.schedule_name or "the schedule bound to priors.diffwave.schedule"
        if self.schedule_name == "schedules.linear":
            example = "e.g. schedules.linear.steps = 200 (pipelines/diffwave_latents.gin)"
        elif self.schedule_name and isinstance(self.schedule_steps, int):
            example = f"e.g. more than {name}.steps = {self.schedule_steps}, or larger betas"
        else:
            example = f"in the settings of {name}"
        return [f"the noise schedule {name} ends at alpha-bar {ab:.3f} ({ab ** 0.5:.2f} of the signal left at step "
                f"{self.num_steps}) but sampling starts from pure noise: unconditional samples come out with too "
                f"little variance. Use more steps or larger betas so that alpha-bar at T is below 0.01: {example}"]

    @staticmethod
    def _check_sampler(name: str) -> str:
        if name not in samplers.SAMPLERS:
            raise ConfigError(f"unknown sampler {name!r}", fix=f"use one of {', '.join(samplers.SAMPLERS)}")
        return name

    @staticmethod
    def _frozen_copy(net: nn.Module) -> nn.Module:
        """A copy whose parameters are buffers: in the state dict (checkpoints hold the EMA weights) but not in
        ``parameters()`` (no optimiser updates them)."""
        ema = copy.deepcopy(net)
        for mod in ema.modules():
            for name, p in list(mod._parameters.items()):
                del mod._parameters[name]
                mod.register_buffer(name, p.detach().clone())
        return ema

    @torch.no_grad()
    def update_ema(self) -> None:
        """Move the EMA weights towards the live ones; call after each optimiser step (no-op when ema = 0).

        The decay ramps up as min(ema, (1 + n) / (10 + n)) over the first updates, so the EMA does not stay
        anchored to the random initialisation. BatchNorm running statistics are averaged the same way."""
        if self.ema_net is None:
            return
        self.ema_updates += 1
        n = int(self.ema_updates)
        decay = min(self.ema_decay, (1 + n) / (10 + n))
        live = self.net.state_dict()
        for name, avg in self.ema_net.state_dict().items():
            if avg.is_floating_point():
                avg.lerp_(live[name], 1 - decay)
            else:
                avg.copy_(live[name])

    # ---- layout: (B, C, L) latents <-> what the network sees

    def _to_net(self, x: Tensor) -> Tensor:
        """Flattened: frame-major interleaving (frame 0's C values, then frame 1's, ...), so padding stays at the
        end of the sequence and one frame's channels are neighbours."""
        if not self.flatten:
            return x
        return rearrange(x, "b c l -> b 1 (l c)")

    def _from_net(self, y: Tensor, length: int) -> Tensor:
        if not self.flatten:
            return y
        return rearrange(y, "b 1 (l c) -> b c l", l=length, c=self.latent_size)

    def _frames_to_net(self, v: Tensor) -> Tensor:
        """A per-frame tensor (mask (B, L), conditioner (B, K, L)) repeated for each channel when flattened."""
        return v.repeat_interleave(self.latent_size, dim=-1) if self.flatten else v

    def _check(self, x: Tensor, mask: Tensor | None, cond: Tensor | None) -> None:
        if x.ndim != 3 or x.shape[1] != self.latent_size:
            raise ValueError(f"expected latents (B, {self.latent_size}, L), got {tuple(x.shape)}")
        if mask is not None and mask.shape != (x.shape[0], x.shape[2]):
            raise ValueError(f"mask must be (B, L) = {(x.shape[0], x.shape[2])}, got {tuple(mask.shape)}")
        self._check_cond(cond, x.shape[0], x.shape[2])

    def _check_cond(self, cond: Tensor | None, n: int, length: int) -> None:
        if self.cond_channels and cond is None:
            raise ValueError(f"this prior is conditional (cond_channels={self.cond_channels}): pass cond")
        if not self.cond_channels and cond is not None:
            raise ValueError("this prior is unconditional (cond_channels=0) but cond was given")
        if cond is not None and cond.shape != (n, self.cond_channels, length):
            raise ValueError(f"cond must be {(n, self.cond_channels, length)}, got {tuple(cond.shape)}")

    # ---- training

    def training_loss(self, x: Tensor, mask: Tensor | None = None, cond: Tensor | None = None,
                      t: Tensor | None = None) -> dict:
        """Denoising loss at a random step per sequence (or at steps ``t``, (B,), as ``audiogen evaluate`` scores
        each noise level): {"loss", "loss_l1", "loss_l2"[, "cond_scale", "cond_scale_min"]}; masked frames (mask
        False) are excluded and their content is never seen."""
        self._check(x, mask, cond)
        if mask is not None and bool(mask.all()):
            mask = None  # the unmasked path is cheaper and equivalent
        if t is None:
            t = torch.randint(0, self.num_steps, (x.shape[0],), device=x.device)
        abar = alpha_bars(self.betas)[t].to(x.dtype)[:, None, None]
        noise = torch.randn_like(x)
        x_t = abar.sqrt() * x + (1 - abar).sqrt() * noise
        m = None
        if mask is not None:
            m = self._frames_to_net(mask)[:, None].to(x.dtype)  # (B, 1, L')
            x_t = x_t * mask[:, None]
            cond = None if cond is None else cond * mask[:, None]
        net_cond = None if cond is None else self._frames_to_net(cond)
        pred = self._from_net(self.net(self._to_net(x_t), t, net_cond, m, track_cond=True), x.shape[2])
        err = pred - noise
        if mask is None:
            l1, l2 = err.abs().mean(), err.pow(2).mean()
        else:
            w = mask[:, None].to(x.dtype)
            count = w.sum().clamp_min(1) * x.shape[1]
            l1, l2 = (err.abs() * w).sum() / count, (err.pow(2) * w).sum() / count
        out = {"loss": l1 if self.loss == "l1" else l2, "loss_l1": l1.detach(), "loss_l2": l2.detach()}
        if cond is not None and self.net.last_cond_ratio is not None:
            out.update(self._cond_logs(self.net.last_cond_ratio))
        return out

    def _cond_logs(self, ratio: Tensor) -> dict:
        """Conditioner contribution's RMS over the RMS of the dilated conv output it is added to, per block."""
        scale = ratio.mean()
        if not self._cond_warned and float(scale) < COND_SCALE_WARN:
            self._cond_warned = True
            log.warning("diffwave: the conditioner's contribution is %.2g of the signal it is added to (RMS ratio, "
                        "mean over blocks); at this scale it is unlikely to influence the model. Check the "
                        "conditioner's normalisation (it should be roughly unit scale).", float(scale))
        return {"cond_scale": scale, "cond_scale_min": ratio.min()}

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> PriorOutput:
        raise NotImplementedError(
            "priors.diffwave has no exact likelihood (has_likelihood = False): it is trained with a denoising loss "
            "(training_loss), which is not a bound in nats. Compare it with other priors on samples instead.")

    # ---- sampling

    @torch.no_grad()
    def sample(self, n: int, length: int, cond: Tensor | None = None, sampler: str | None = None,
               steps: int | None = None, generator: torch.Generator | None = None,
               use_ema: bool | None = None) -> Tensor:
        """(n, latent_size, length) latents (normalised, like the training data).

        ``sampler``: 'ancestral' (every training step), 'fast' (``fast_betas``), 'ddim' (``steps`` evenly spaced
        training steps, default ``sample_steps``; eta ``ddim_eta``); default the configured ``sampler``.
        Runs in eval mode (BatchNorm running statistics), restoring the previous mode; with the EMA weights when
        ema > 0 unless ``use_ema=False``."""
        sampler = self._check_sampler(sampler or self.sampler)
        if steps is not None and steps < 1:
            raise ValueError(f"steps = {steps} must be at least 1")
        if steps is not None and sampler != "ddim":
            raise ValueError(f"steps applies to the ddim sampler only ('{sampler}' takes "
                             + ("every training step)" if sampler == "ancestral" else "one step per fast beta)"))
        self._check_cond(cond, n, length)
        net = self.ema_net if (use_ema is not False and self.ema_net is not None) else self.net
        was_training = self.training
        self.eval()
        try:
            dev = self.betas.device
            dtype = next(self.net.parameters()).dtype
            cond_proj = net.project_cond(self._frames_to_net(cond.to(dev, dtype))) if cond is not None else None

            def denoise(x: Tensor, t: Tensor) -> Tensor:
                return net(x, t, cond_proj=cond_proj)

            shape = (n, self.in_channels, length * (self.latent_size if self.flatten else 1))
            kw = {"generator": generator, "device": dev, "dtype": dtype}
            if sampler == "ancestral":
                x = samplers.ancestral(denoise, shape, self.betas, **kw)
            elif sampler == "fast":
                x = samplers.fast(denoise, shape, self.betas, self.fast_betas, **kw)
            else:
                x = samplers.ddim(denoise, shape, self.betas, steps or self.sample_steps, self.ddim_eta, **kw)
        finally:
            self.train(was_training)
        if self.clip is not None:
            x = x.clamp(-self.clip, self.clip)
        return self._from_net(x, length).contiguous()
