"""Stochastic RNN (Fraccaro et al. 2016): a deterministic GRU over the inputs, and a stochastic layer on top.

    d_t = GRU(phi_x(x_{t-1}), d_{t-1})                     (forward, one fused call for all steps)
    p(z_t | z_{t-1}, d_t),   p(x_t | z_t, d_t)  (via the pipeline's decoder)
    q(z_t | z_{t-1}, a_t),   a_t = GRU_backward([d_t, phi_x(x_t)], a_{t+1})   inference = 'smoothing'
    q(z_t | z_{t-1}, d_t, phi_x(x_t))                                              inference = 'filtering'

With ``residual_posterior`` the posterior mean is the prior mean plus a learned offset. ``prior_mean_bound`` (None:
off) soft-clips the prior's mean to +-bound (bound * tanh(mean / bound)): sampled from the prior alone, z_t feeds
back into its own mean, and an unbounded map can run away outside the region training visited. In segmented evaluation
the backward GRU sees one segment only; any posterior gives a valid bound, so scores stay upper bounds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import AutoregressiveModel, LatentOutput
from audiogen.layers import gaussian_head, mlp
from audiogen.priors.temporal.cwvae import gaussian_kl, log_normal
from audiogen.priors.temporal.steps import StepLinear, gru_sequence

INFERENCE = ("smoothing", "filtering")


class SRNN(AutoregressiveModel):
    """Stochastic RNN (Fraccaro et al. 2016): a GRU over the inputs with a stochastic layer on top (smoothing or
    filtering posterior)."""

    def __init__(self, input_size: int = 64, latent_size: int = 256, hidden_size: int = 256, feature_size=None,
                 context_size: int = 256, inference: str = "smoothing", residual_posterior: bool = True,
                 min_std: float = 0.01, prior_mean_bound: float | None = None):
        super().__init__()
        if inference not in INFERENCE:
            raise ValueError(f"priors.srnn.inference must be one of {INFERENCE}, got {inference!r}")
        E, D, H = int(input_size), int(latent_size), int(hidden_size)
        F_ = int(feature_size or H)
        self.input_sizes, self.latent_sizes, self.context_size = [E], [D], int(context_size)
        self.hidden, self.min_std, self.residual, self.inference = H, float(min_std), bool(residual_posterior), inference
        self.bound = None if prior_mean_bound is None else float(prior_mean_bound)
        self.phi_x = mlp([E, F_, F_], last_activation=True)
        self.forward_rnn = nn.GRU(F_, H, batch_first=True)
        self.prior = mlp([D + H, H, 2 * D])
        if inference == "smoothing":
            self.backward_rnn = nn.GRU(H + F_, H, batch_first=True)
            self.posterior = mlp([D + H, H, 2 * D])
        else:
            self.posterior = mlp([D + H + F_, H, 2 * D])
        self.out = nn.Linear(H + D, self.context_size)

    def _bounded(self, mean: Tensor) -> Tensor:
        return mean if self.bound is None else self.bound * torch.tanh(mean / self.bound)

    def _init(self, B: int, like: Tensor, state):
        if state is not None and state.get("h") is not None:
            return state["h"], state["z"]
        return like.new_zeros(1, B, self.hidden), like.new_zeros(B, self.latent_sizes[0])

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        x = encodings[0]
        B, _, L = x.shape
        h0, z = self._init(B, x, state)
        fx = self.phi_x(x.transpose(1, 2))
        first = self.phi_x(self.previous(x[..., :1], state).transpose(1, 2))  # phi_x is frame-local: shift fx
        d, h = gru_sequence(self.forward_rnn, torch.cat([first, fx[:, :-1]], 1), h0)  # (B, L, H)
        if self.inference == "smoothing":
            a = gru_sequence(self.backward_rnn, torch.cat([d, fx], -1), reverse=True)[0]
            post_in = a
        else:
            post_in = torch.cat([d, fx], -1)
        eps = torch.randn(L, B, self.latent_sizes[0], dtype=x.dtype, device=x.device) if sample else None
        D = self.latent_sizes[0]
        # The first layers read [z_{t-1}, d_t] and [z_{t-1}, a_t]: the halves that read d_t and a_t for all steps
        # at once, the halves that read z_{t-1} in one matmul per step. The prior runs after the loop unless the
        # residual posterior needs its mean.
        prior0, post0 = self.prior[0], self.posterior[0]
        post_a = F.linear(post_in, post0.weight[:, D:], post0.bias)
        reads_z = [post0.weight[:, :D]] + ([prior0.weight[:, :D]] if self.residual else [])
        from_z = StepLinear(torch.cat(reads_z))
        post_out = StepLinear(self.posterior[2].weight, self.posterior[2].bias)
        prior_d = F.linear(d, prior0.weight[:, D:], prior0.bias) if self.residual else None
        prior_out = StepLinear(self.prior[2].weight, self.prior[2].bias)
        zs, prior_raw, mqs, sqs = [z], [], [], []
        # unbind, not [:, t]: the backward of L slices would write L zero-filled full-size gradients (O(L^2))
        prior_steps = prior_d.unbind(1) if self.residual else [None] * L
        for t, (post_a_t, prior_d_t) in enumerate(zip(post_a.unbind(1), prior_steps)):
            zq, *zp = from_z(z).split(self.hidden, -1)
            mq, sq = gaussian_head(post_out(F.elu(zq + post_a_t)), self.min_std)
            if self.residual:
                raw = prior_out(F.elu(zp[0] + prior_d_t))
                prior_raw.append(raw)
                mq = mq + self._bounded(raw[:, :D])
            z = mq + sq * eps[t] if sample else mq
            zs.append(z)
            mqs.append(mq)
            sqs.append(sq)
        z_prev, zs = torch.stack(zs[:-1], 1), torch.stack(zs[1:], 1)
        mq, sq = torch.stack(mqs, 1), torch.stack(sqs, 1)
        raw = torch.stack(prior_raw, 1) if self.residual else self.prior(torch.cat([z_prev, d], -1))
        mp, sp = gaussian_head(raw, self.min_std)
        mp = self._bounded(mp)
        context = self.out(torch.cat([d, zs], -1)).transpose(1, 2)
        kl = gaussian_kl(mq, sq, mp, sp).transpose(1, 2)
        log_ratio = (log_normal(zs, mq, sq) - log_normal(zs, mp, sp)).transpose(1, 2)
        return LatentOutput(context=context, kl=[kl], posterior_mean=[mq.transpose(1, 2)],
                            state={"h": h, "z": z, "last": x[..., -1]}, log_ratio=[log_ratio])

    @torch.no_grad()
    def step(self, prev: Tensor, state=None, temperature: float = 1.0):
        h, z = self._init(prev.shape[0], prev, state)
        d, h = self.forward_rnn(self.phi_x(prev)[:, None], h)
        d = d[:, 0]
        mp, sp = gaussian_head(self.prior(torch.cat([z, d], -1)), self.min_std)
        mp = self._bounded(mp)
        z = mp + sp * (torch.randn_like(mp) * temperature)
        return self.out(torch.cat([d, z], -1)), {"h": h, "z": z}
