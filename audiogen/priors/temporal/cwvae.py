"""Clockwork VAE (Saxena et al. 2021), adapted to speech as in "Benchmarking Generative Latent Variable Models
for Speech": a hierarchy of RSSM cells, level l ticking once every ``ratio**(l-1)`` level-1 frames.

Generation is top-down: the top level runs first; each level's states (h, z) are upsampled (a transposed conv
with kernel = stride = ratio) into the context of every step of the level below. Inference shares the
generative cells: at each step the posterior q(z_t | h_t, e_t) reads the same deterministic state h_t as the
prior p(z_t | h_t), plus the encoder's representation e_t of that level (a ladder encoder gives one per level).
With ``precision_weighted=True`` the posterior is the precision-weighted product of the prior and an
encoder-only Gaussian (Ladder VAE style).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import LatentModel, LatentOutput
from audiogen.layers import as_list, gaussian_head
from audiogen.priors.temporal.steps import StepLinear, fused_step_linear, gru_update


def gaussian_kl(mq: Tensor, sq: Tensor, mp: Tensor, sp: Tensor) -> Tensor:
    """Elementwise KL(N(mq, sq^2) || N(mp, sp^2)) in nats."""
    return torch.log(sp / sq) + (sq.pow(2) + (mq - mp).pow(2)) / (2 * sp.pow(2)) - 0.5


def log_normal(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return -0.5 * ((x - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)


class RSSMCell(nn.Module):
    """One level: deterministic GRU state h_t and Gaussian stochastic state z_t."""

    def __init__(self, latent: int, hidden: int, context: int, embed: int, min_std: float,
                 precision_weighted: bool):
        super().__init__()
        self.latent, self.hidden, self.min_std = latent, hidden, min_std
        self.precision_weighted = precision_weighted
        self.in_z = nn.Linear(latent, hidden)
        self.in_ctx = nn.Linear(context, hidden, bias=False) if context else None
        self.gru = nn.GRUCell(hidden, hidden)
        self.prior = nn.Sequential(nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 2 * latent))
        self.post_h = nn.Linear(hidden, hidden, bias=False)
        self.post_e = nn.Linear(embed, hidden)
        self.post_out = nn.Sequential(nn.ELU(), nn.Linear(hidden, 2 * latent))

    def run(self, embed: Tensor, context: Tensor | None, state, sample: bool = True, use_posterior: bool = True,
            temperature: float = 1.0):
        """Unroll over T steps. embed (B, T, E) or None (generation); context (B, T, C) or None.

        Returns per-step tensors (B, T, .) and the final state (h, z)."""
        B, T = (embed if embed is not None else context).shape[:2]
        h, z = state if state is not None else (embed.new_zeros(B, self.hidden) if embed is not None
                                                else context.new_zeros(B, self.hidden), None)
        if z is None:
            z = h.new_zeros(B, self.latent)
        # input projections that do not depend on the recurrence, computed for all steps at once
        ctx = self.in_ctx(context) if self.in_ctx is not None and context is not None else None
        emb = self.post_e(embed) if use_posterior else None
        eps = torch.randn(T, B, self.latent, device=h.device, dtype=h.dtype) if sample else None
        if sample and temperature != 1.0:  # generation only: scales the draws of z from the prior
            eps = eps * temperature
        # Everything that reads h_t in one matmul per step: next step's hidden gates, the posterior's h half and,
        # where z_t needs it, the prior's first layer (otherwise the prior runs over all steps after the loop).
        prior_in_loop = self.precision_weighted or not use_posterior
        reads_h = [(self.gru.weight_hh, self.gru.bias_hh)]
        if use_posterior:
            reads_h.append((self.post_h.weight, self.post_h.weight.new_zeros(self.hidden)))
        if prior_in_loop:
            reads_h.append((self.prior[0].weight, self.prior[0].bias))
        from_h, sizes = fused_step_linear(reads_h)
        in_z, gate_x = StepLinear(self.in_z.weight, self.in_z.bias), StepLinear(self.gru.weight_ih, self.gru.bias_ih)
        post_out, prior_out = (StepLinear(m.weight, m.bias) for m in (self.post_out[1], self.prior[2]))
        gh = from_h(h)[:, : 3 * self.hidden]
        # unbind, not [:, t]: the backward of T slices would write T zero-filled full-size gradients (O(T^2))
        ctx_steps = ctx.unbind(1) if ctx is not None else [None] * T
        emb_steps = emb.unbind(1) if use_posterior else [None] * T
        hs, zs, mps, sps, mqs, sqs = [], [], [], [], [], []
        for t, (ctx_t, emb_t) in enumerate(zip(ctx_steps, emb_steps)):
            x = in_z(z)
            if ctx_t is not None:
                x = x + ctx_t
            h = gru_update(gate_x(F.elu(x)), gh, h)
            gh, *reads = from_h(h).split(sizes, -1)
            if prior_in_loop:
                mp, sp = gaussian_head(prior_out(F.elu(reads[-1])), self.min_std)
                mps.append(mp)
                sps.append(sp)
            if use_posterior:
                mq, sq = gaussian_head(post_out(F.elu(reads[0] + emb_t)), self.min_std)
                if self.precision_weighted:
                    wp, wq = sp.pow(-2), sq.pow(-2)
                    var = 1 / (wp + wq)
                    mq, sq = (mp * wp + mq * wq) * var, var.sqrt()
                mqs.append(mq)
                sqs.append(sq)
                m, s = mq, sq
            else:
                m, s = mp, sp
            z = m + s * eps[t] if sample else m
            hs.append(h)
            zs.append(z)
        hs = torch.stack(hs, 1)
        mp, sp = (torch.stack(mps, 1), torch.stack(sps, 1)) if prior_in_loop else gaussian_head(self.prior(hs), self.min_std)
        out = {"h": hs, "z": torch.stack(zs, 1), "prior_mean": mp, "prior_std": sp}
        if use_posterior:
            out["post_mean"], out["post_std"] = torch.stack(mqs, 1), torch.stack(sqs, 1)
        return out, (h, z)


class ClockworkVAE(LatentModel):
    """Hierarchy of ``levels`` RSSM cells; level l steps once every ``ratio**(l-1)`` level-1 frames."""

    def __init__(self, levels: int = 2, ratio: int = 8, latent_size=96, hidden_size=96, input_size=96,
                 context_size: int = 96, precision_weighted: bool = False, min_std: float = 0.1):
        super().__init__()
        self.levels, self.ratio = int(levels), int(ratio)
        self.latent_sizes = as_list(latent_size, self.levels, "latent_size")
        self.hidden_sizes = as_list(hidden_size, self.levels, "hidden_size")
        self.input_sizes = as_list(input_size, self.levels, "input_size")
        self.level_strides = [self.ratio**i for i in range(self.levels)]
        self.context_size = int(context_size)
        ctx_sizes = self.hidden_sizes[:-1] + [0]  # level i receives context of its own width from level i+1
        self.cells = nn.ModuleList(
            RSSMCell(self.latent_sizes[i], self.hidden_sizes[i], ctx_sizes[i], self.input_sizes[i], min_std,
                     precision_weighted) for i in range(self.levels))
        # level l+1 state -> context for each of the ratio steps of level l below it
        self.up = nn.ModuleList(
            nn.ConvTranspose1d(self.hidden_sizes[i + 1] + self.latent_sizes[i + 1], self.hidden_sizes[i],
                               self.ratio, stride=self.ratio) for i in range(self.levels - 1))
        self.out = nn.Conv1d(self.hidden_sizes[0] + self.latent_sizes[0], self.context_size, 1)

    def _check_lengths(self, lengths: list[int]) -> None:
        for i in range(1, len(lengths)):
            if lengths[i - 1] != lengths[i] * self.ratio:
                raise ValueError(f"level {i} has {lengths[i - 1]} steps but level {i + 1} has {lengths[i]}; "
                                 f"the input must be a multiple of the top level's hop (pad it)")

    def _unroll(self, encodings: list[Tensor] | None, n: int, length: int, state, sample: bool,
                temperature: float = 1.0):
        posterior = encodings is not None
        if posterior:
            if len(encodings) != self.levels:
                raise ValueError(f"expected {self.levels} encoder levels, got {len(encodings)}")
            lengths = [e.shape[-1] for e in encodings]
            self._check_lengths(lengths)
        else:
            top = math.ceil(length / self.level_strides[-1])
            lengths = [top * (self.level_strides[-1] // s) for s in self.level_strides]
        state = state or [None] * self.levels
        new_state = [None] * self.levels
        results: list[dict] = [None] * self.levels
        context = None
        for i in reversed(range(self.levels)):
            cell = self.cells[i]
            embed = encodings[i].transpose(1, 2) if posterior else None
            if embed is None and context is None:  # generating the top level: drive it by length only
                context = torch.zeros(n, lengths[i], 0, device=self.out.weight.device)
            res, new_state[i] = cell.run(embed, context, state[i], sample=sample, use_posterior=posterior,
                                         temperature=temperature)
            results[i] = res
            if i > 0:
                s = torch.cat([res["h"], res["z"]], -1).transpose(1, 2)  # (B, H+D, T_i)
                context = self.up[i - 1](s).transpose(1, 2)  # (B, T_{i-1}, H_{i-1})
        s1 = torch.cat([results[0]["h"], results[0]["z"]], -1).transpose(1, 2)
        return self.out(s1), results, new_state

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        B = encodings[0].shape[0]
        context, results, new_state = self._unroll(encodings, B, encodings[0].shape[-1], state, sample)
        kl = [gaussian_kl(r["post_mean"], r["post_std"], r["prior_mean"], r["prior_std"]).transpose(1, 2)
              for r in results]
        log_ratio = [(log_normal(r["z"], r["post_mean"], r["post_std"])
                      - log_normal(r["z"], r["prior_mean"], r["prior_std"])).transpose(1, 2) for r in results]
        return LatentOutput(context=context, kl=kl, posterior_mean=[r["post_mean"].transpose(1, 2) for r in results],
                            state=new_state, log_ratio=log_ratio)

    @torch.no_grad()
    def generate(self, n: int, length: int, state=None, temperature: float = 1.0):
        context, _, new_state = self._unroll(None, n, length, state, sample=True, temperature=temperature)
        return context[..., :length], new_state
