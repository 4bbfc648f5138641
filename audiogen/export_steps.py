"""Scriptable generation steps of trained priors, for ``audiogen export``: the trained submodules themselves
(shared, not copied), driven by TorchScript code that mirrors each prior's Python sampling step.

The Python priors cannot be scripted whole (their training paths use custom autograd functions and dict states),
so each wrapper here repeats only the sampling step. tests/test_export.py checks that every wrapper gives the
same numbers as the Python prior under the same seed, so the two cannot drift apart unnoticed.

- Recurrent priors (``priors.sequence`` over VRNN, SRNN or LSTM, one Gaussian or Gaussian-mixture output): frame by frame, the
  recurrent state and the previous frame's embedding kept in buffers between calls.
- DiffWave: one window of ``window`` frames per generation with deterministic DDIM (eta 0) over ``steps`` of the
  training steps; after the first, each window starts with ``context`` frames of what came before (inpainting by
  replacement: the context is noised to each step's level with the window's own initial noise).
"""

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.errors import ConfigError

EXPORT_FIX = ("export a priors.sequence prior (VRNN, SRNN or LSTM) with one Gaussian or Gaussian-mixture output, "
              "or priors.diffwave")


def _gaussian(x: Tensor, min_std: float) -> Tuple[Tensor, Tensor]:
    """``audiogen.layers.gaussian_head``: (mean, softplus(raw) + min_std)."""
    mean, raw = x.chunk(2, dim=-1)
    return mean, F.softplus(raw) + min_std


class VRNNStep(nn.Module):
    """``VRNN.step``: state (d, z)."""

    def __init__(self, m):
        super().__init__()
        self.phi_x, self.phi_z, self.rnn, self.prior, self.out = m.phi_x, m.phi_z, m.rnn, m.prior, m.out
        self.hidden, self.latent, self.min_std = m.hidden, m.latent_sizes[0], m.min_std

    def init_state(self, batch: int) -> Tuple[Tensor, Tensor]:
        w = self.out.weight
        return w.new_zeros(batch, self.hidden), w.new_zeros(batch, self.latent)

    def forward(self, prev: Tensor, s1: Tensor, s2: Tensor, temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        d = self.rnn(torch.cat([self.phi_x(prev), self.phi_z(s2)], -1), s1)
        mp, sp = _gaussian(self.prior(d), self.min_std)
        z = mp + sp * (torch.randn_like(mp) * temperature)
        return self.out(torch.cat([d, self.phi_z(z)], -1)), d, z


class SRNNStep(nn.Module):
    """``SRNN.step``: state (h, z)."""

    def __init__(self, m):
        super().__init__()
        self.phi_x, self.forward_rnn, self.prior, self.out = m.phi_x, m.forward_rnn, m.prior, m.out
        self.hidden, self.latent, self.min_std = m.hidden, m.latent_sizes[0], m.min_std

    def init_state(self, batch: int) -> Tuple[Tensor, Tensor]:
        w = self.out.weight
        return w.new_zeros(1, batch, self.hidden), w.new_zeros(batch, self.latent)

    def forward(self, prev: Tensor, s1: Tensor, s2: Tensor, temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        d, h = self.forward_rnn(self.phi_x(prev)[:, None], s1)
        d = d[:, 0]
        mp, sp = _gaussian(self.prior(torch.cat([s2, d], -1)), self.min_std)
        z = mp + sp * (torch.randn_like(mp) * temperature)
        return self.out(torch.cat([d, z], -1)), h, z


class LSTMStep(nn.Module):
    """``LSTMModel.step``: state (h, c)."""

    def __init__(self, m):
        super().__init__()
        self.phi_x, self.rnn, self.out = m.phi_x, m.rnn, m.out
        self.layers, self.hidden = m.rnn.num_layers, m.rnn.hidden_size

    def init_state(self, batch: int) -> Tuple[Tensor, Tensor]:
        w = self.out.weight
        return w.new_zeros(self.layers, batch, self.hidden), w.new_zeros(self.layers, batch, self.hidden)

    def forward(self, prev: Tensor, s1: Tensor, s2: Tensor, temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        y, hc = self.rnn(self.phi_x(prev)[:, None], (s1, s2))
        return self.out(y[:, 0]), hc[0], hc[1]


def _step_for(model) -> nn.Module:
    from audiogen.priors.temporal.lstm import LSTMModel
    from audiogen.priors.temporal.srnn import SRNN
    from audiogen.priors.temporal.vrnn import VRNN

    for cls, step in ((VRNN, VRNNStep), (SRNN, SRNNStep), (LSTMModel, LSTMStep)):
        if type(model) is cls:
            return step(model)
    raise ConfigError(f"priors.sequence over {type(model).__name__} cannot be exported (no scriptable step)",
                      fix=EXPORT_FIX)


class RecurrentGenerator(nn.Module):
    """Frames (B, D, n), normalised -> the prior's draws for the same n frames, one at a time.

    Frame t's draw is made from the state after frame t - 1; that frame is the incoming one with ``listen``, or
    the prior's own previous draw without it. The state stays in buffers between calls (streaming)."""

    def __init__(self, prior):
        super().__init__()
        from audiogen.distributions.gaussian import GaussianMixture

        dists = list(prior.dists)
        if len(dists) != 1 or not isinstance(dists[0], GaussianMixture):
            raise ConfigError(f"this priors.sequence has outputs {[type(d).__name__ for d in dists]}; the export "
                              "draws from one Gaussian or Gaussian mixture over all dimensions", fix=EXPORT_FIX)
        self.step = _step_for(prior.model)
        self.embed, self.head = prior.embed[0], prior.head
        self.latent_size = prior.latent_size
        q = dists[0]
        self.num_params, self.has_logits, self.components = q.num_params, bool(q.has_logits), q.num_components
        self.min_log_std = math.log(q.min_std)
        self.eps = float(torch.finfo(torch.float32).eps)  # mixture.uniform keeps U(0, 1) off 0 and 1
        s1, s2 = self.step.init_state(1)
        self.register_buffer("prev", s1.new_zeros(1, prior.model.input_sizes[0]))
        self.register_buffer("s1", s1)
        self.register_buffer("s2", s2)

    @torch.jit.export
    def reset(self, batch: int):
        s1, s2 = self.step.init_state(batch)
        self.prev = self.prev.new_zeros(batch, self.prev.shape[1])
        self.s1 = s1
        self.s2 = s2

    @torch.jit.export
    def frame(self, prev: Tensor, s1: Tensor, s2: Tensor, temperature: float) -> Tuple[Tensor, Tensor, Tensor]:
        """One frame (B, D) drawn as ``SequencePrior._draw`` and ``GaussianMixture.sample`` draw it (component by
        Gumbel-max, then its Gaussian; the noise in the same order), all noise scaled by ``temperature``."""
        context, s1, s2 = self.step(prev, s1, s2, temperature)
        p = self.head(context[..., None])
        B, D, P, K = p.shape[0], self.latent_size, self.num_params, self.components
        q = p.reshape(B, P, D, 1).transpose(1, 2).reshape(B * D, P, 1)
        if self.has_logits:
            logits, means, log_stds = q[:, :K], q[:, K:2 * K], q[:, 2 * K:].clamp_min(self.min_log_std)
            u = torch.rand(logits.shape, dtype=q.dtype, device=q.device).clamp(self.eps, 1.0 - self.eps)
            # temperature scales the Gumbel noise too: at 0 the most likely component, at 1 softmax(logits)
            idx = (logits + -torch.log(-torch.log(u)) * temperature).argmax(1, keepdim=True)
            mu, log_std = means.gather(1, idx), log_stds.gather(1, idx)
        else:
            mu, log_std = q[:, :1], q[:, 1:].clamp_min(self.min_log_std)
        noise = torch.randn(mu.shape, dtype=q.dtype, device=q.device)
        x = mu + log_std.exp() * (noise * temperature)
        return x.view(B, D), s1, s2

    def forward(self, x: Tensor, listen: bool, temperature: float) -> Tensor:
        if self.prev.shape[0] != x.shape[0]:
            self.reset(x.shape[0])
        prev, s1, s2 = self.prev, self.s1, self.s2
        frames: List[Tensor] = []
        for t in range(x.shape[-1]):
            y, s1, s2 = self.frame(prev, s1, s2, temperature)
            frames.append(y)
            prev = self.embed((x[:, :, t] if listen else y)[..., None])[..., 0]
        self.prev = prev
        self.s1 = s1
        self.s2 = s2
        if len(frames) == 0:
            return x
        return torch.stack(frames, -1)


class _Block(nn.Module):
    """``diffwave.ResidualBlock`` without a conditioner, in eval mode."""

    def __init__(self, block):
        super().__init__()
        self.dilated, self.out = block.dilated, block.out
        self.has_norm = block.norm is not None
        self.norm = nn.BatchNorm1d(block.dilated.in_channels)
        if block.norm is not None:  # the trained running statistics; BatchNorm1d's eval path, as the prior's
            self.norm.load_state_dict(block.norm.state_dict())
        self.norm.eval()

    def forward(self, x: Tensor, step: Tensor) -> Tuple[Tensor, Tensor]:
        y = self.dilated(x + step)
        gate, filt = y.chunk(2, 1)
        res, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, 1)
        x = (x + res) * (1 / math.sqrt(2))
        if self.has_norm:
            x = self.norm(x)
        return x, skip


class DiffWaveDenoiser(nn.Module):
    """``DiffWaveNet.forward`` at integer steps, unconditional, on the trained (EMA if kept) weights."""

    def __init__(self, net):
        super().__init__()
        self.register_buffer("table", net.embedding.table.clone())
        self.embed_mlp, self.step_proj, self.inp = net.embedding.mlp, net.step_proj, net.inp
        self.blocks = nn.ModuleList([_Block(b) for b in net.blocks])
        self.skip_out, self.out = net.skip_out, net.out
        self.layers, self.channels = net.layers, net.channels

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        steps = self.step_proj(self.embed_mlp(self.table[t])).view(-1, self.layers, self.channels, 1)
        h = F.relu(self.inp(x))
        skips = torch.zeros_like(h)
        i = 0
        for block in self.blocks:
            h, skip = block(h, steps[:, i])
            skips = skip if i == 0 else skips + skip
            i += 1
        h = F.relu(self.skip_out(skips * (1 / math.sqrt(self.layers))))
        return self.out(h)


class DiffWaveGenerator(nn.Module):
    """Windows of ``window`` frames queued and handed out ``n`` frames per call (normalised latents).

    The next window is computed a few DDIM steps per call while the current one is handed out (enough steps per
    call to finish it before the queue runs dry), so no single call pays for a whole window after the first.
    Running free (``listen`` off), the output does not depend on how a stream is cut into calls: windows are made
    in the same order from the same noise, each continuing the last ``context`` frames of the one before. With
    ``listen`` the context of a window is the last ``context`` incoming frames when it starts."""

    def __init__(self, prior, window: int, context: int, steps: int):
        super().__init__()
        from audiogen.priors.samplers import ddim_steps
        from audiogen.schedules import alpha_bars

        if prior.cond_channels:
            raise ConfigError("a conditional priors.diffwave (cond_channels > 0) cannot be exported: nn~ has no "
                              "conditioner to give it", fix=EXPORT_FIX)
        if not 0 <= context < window:
            raise ConfigError(f"--context-frames {context} must be at least 0 and below --window-frames {window}",
                              fix=f"e.g. --window-frames {max(window, 8)} --context-frames {max(window, 8) // 4}")
        net = prior.ema_net if prior.ema_net is not None else prior.net
        self.denoiser = DiffWaveDenoiser(net)
        self.latent_size, self.flatten = prior.latent_size, prior.flatten
        self.window, self.context = int(window), int(context)
        abar = alpha_bars(prior.betas.double().cpu())
        ts = ddim_steps(len(prior.betas), int(steps)).tolist()
        # the coefficients samplers.ddim computes, as the same Python floats (eta 0: no noise after the first draw)
        self.a: List[float] = [float(abar[t]) for t in ts]
        self.a_prev: List[float] = [float(abar[ts[i - 1]]) if i > 0 else 1.0 for i in range(len(ts))]
        self.register_buffer("ts", torch.tensor(ts, dtype=torch.long))
        self.per_frame = self.latent_size if self.flatten else 1
        self.net_channels = 1 if self.flatten else self.latent_size
        w = prior.net.out.weight
        self.started = False
        self.next_step = -1  # the DDIM step the window in progress runs next (counting down); -1: none
        self.work_context = 0  # frames of context at the start of the window in progress
        self.register_buffer("queue", w.new_zeros(1, self.latent_size, 0))
        self.register_buffer("tail", w.new_zeros(1, self.latent_size, 0))
        self.register_buffer("work", w.new_zeros(1, self.net_channels, 0))
        self.register_buffer("known", w.new_zeros(1, self.net_channels, 0))
        self.register_buffer("noise0", w.new_zeros(1, self.net_channels, 0))

    def _to_net(self, x: Tensor) -> Tensor:
        if not self.flatten:
            return x
        # TorchScript cannot run einops: plain torch for DiffWave's rearrange "b c l -> b 1 (l c)"
        return x.transpose(1, 2).reshape(x.shape[0], 1, x.shape[1] * x.shape[2])

    def _from_net(self, y: Tensor, length: int) -> Tensor:
        if not self.flatten:
            return y
        return y.reshape(y.shape[0], length, self.latent_size).transpose(1, 2)

    def _noise(self, batch: int, temperature: float) -> Tensor:
        w = self.queue
        return torch.randn(batch, self.net_channels, self.window * self.per_frame, dtype=w.dtype,
                           device=w.device) * temperature

    def _step(self, x: Tensor, known: Tensor, noise0: Tensor, i: int) -> Tensor:
        """DDIM step ``i`` (``samplers.ddim``'s update) with the known start of the window written over x."""
        a, a_prev = self.a[i], self.a_prev[i]
        c = known.shape[-1]
        if c > 0:
            x = torch.cat([math.sqrt(a) * known + math.sqrt(1 - a) * noise0, x[..., c:]], -1)
        eps = self.denoiser(x, self.ts[i:i + 1])
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        return math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev, 0.0)) * eps

    @torch.jit.export
    def window_from(self, ctx: Tensor, batch: int, temperature: float) -> Tensor:
        """One whole window whose first ``ctx.shape[-1]`` frames are ``ctx``; returns the frames after them."""
        x = self._noise(batch, temperature)
        known = self._to_net(ctx)
        noise0 = x[..., :known.shape[-1]].clone()
        for i in range(len(self.a) - 1, -1, -1):
            x = self._step(x, known, noise0, i)
        return self._from_net(x, self.window)[..., ctx.shape[-1]:]

    def _start(self, ctx: Tensor, temperature: float):
        x = self._noise(self.queue.shape[0], temperature)
        self.known = self._to_net(ctx)
        self.noise0 = x[..., :self.known.shape[-1]].clone()
        self.work = x
        self.work_context = ctx.shape[-1]
        self.next_step = len(self.a) - 1

    def _advance(self, budget: int, listen: bool, temperature: float):
        """Run up to ``budget`` steps of the window in progress; a finished window is queued and the next begun."""
        x = self.work
        while budget > 0 and self.next_step >= 0:
            x = self._step(x, self.known, self.noise0, self.next_step)
            self.next_step -= 1
            budget -= 1
        self.work = x
        if self.next_step < 0:
            new = self._from_net(x, self.window)[..., self.work_context:]
            self.queue = torch.cat([self.queue, new], -1)
            if not listen:
                self._keep_tail(new)
            self._start(self.tail, temperature)

    @torch.jit.export
    def reset(self, batch: int):
        self.queue = self.queue.new_zeros(batch, self.latent_size, 0)
        self.tail = self.tail.new_zeros(batch, self.latent_size, 0)
        self.started = False
        self.next_step = -1

    def _keep_tail(self, x: Tensor):
        t = torch.cat([self.tail, x], -1)
        self.tail = t[..., t.shape[-1] - min(self.context, t.shape[-1]):]

    def forward(self, x: Tensor, listen: bool, temperature: float) -> Tensor:
        B, n = x.shape[0], x.shape[-1]
        if self.queue.shape[0] != B:
            self.reset(B)
        if listen:
            self._keep_tail(x)
        if not self.started:
            self._start(self.tail[..., :0], temperature)  # the first window has no context
            self.started = True
        while self.queue.shape[-1] < n:  # only when the queue runs dry (the first call): finish it now
            self._advance(len(self.a), listen, temperature)
        out = self.queue[..., :n]
        self.queue = self.queue[..., n:]
        # enough steps that the window in progress is done before the queue (at least window - context frames) is
        self._advance((len(self.a) * n + self.window - self.context - 1) // (self.window - self.context), listen,
                      temperature)
        return out


def generator_for(prior, window: int, context: int, steps: int) -> nn.Module:
    """The scriptable generator of a trained prior, or a ConfigError saying it cannot be exported."""
    from audiogen.priors.diffwave import DiffWavePrior
    from audiogen.priors.sequence import SequencePrior

    if isinstance(prior, DiffWavePrior):
        return DiffWaveGenerator(prior, window, context, steps)
    if isinstance(prior, SequencePrior):
        if not getattr(prior.model, "autoregressive", False) or len(prior.model.level_strides) != 1:
            raise ConfigError(f"priors.sequence over {type(prior.model).__name__} cannot be exported: only "
                              "frame-by-frame recurrent models stream", fix=EXPORT_FIX)
        return RecurrentGenerator(prior)
    raise ConfigError(f"{type(prior).__name__} cannot be exported", fix=EXPORT_FIX)
