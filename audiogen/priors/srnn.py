"""Stochastic RNN (Fraccaro et al. 2016): a deterministic GRU over the inputs, and a stochastic layer on top.

    d_t = GRU(phi_x(x_{t-1}), d_{t-1})                     (forward, one fused call for all steps)
    p(z_t | z_{t-1}, d_t),   p(x_t | z_t, d_t)  (via the pipeline's decoder)
    q(z_t | z_{t-1}, a_t),   a_t = GRU_backward([d_t, phi_x(x_t)], a_{t+1})   inference = 'smoothing'
    q(z_t | z_{t-1}, d_t, phi_x(x_t))                                              inference = 'filtering'

With ``residual_posterior`` the posterior mean is the prior mean plus a learned offset. In segmented evaluation
the backward GRU sees one segment only; any posterior gives a valid bound, so scores stay upper bounds.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audiogen.contracts import AutoregressiveModel, LatentOutput
from audiogen.layers import gaussian_head, mlp
from audiogen.priors.cwvae import gaussian_kl, log_normal

INFERENCE = ("smoothing", "filtering")


class SRNN(AutoregressiveModel):
    def __init__(self, input_size: int = 64, latent_size: int = 256, hidden_size: int = 256, feature_size=None,
                 context_size: int = 256, inference: str = "smoothing", residual_posterior: bool = True,
                 min_std: float = 0.01):
        super().__init__()
        if inference not in INFERENCE:
            raise ValueError(f"priors.srnn.inference must be one of {INFERENCE}, got {inference!r}")
        E, D, H = int(input_size), int(latent_size), int(hidden_size)
        F_ = int(feature_size or H)
        self.input_sizes, self.latent_sizes, self.context_size = [E], [D], int(context_size)
        self.hidden, self.min_std, self.residual, self.inference = H, float(min_std), bool(residual_posterior), inference
        self.phi_x = mlp([E, F_, F_], last_activation=True)
        self.forward_rnn = nn.GRU(F_, H, batch_first=True)
        self.prior = mlp([D + H, H, 2 * D])
        if inference == "smoothing":
            self.backward_rnn = nn.GRU(H + F_, H, batch_first=True)
            self.posterior = mlp([D + H, H, 2 * D])
        else:
            self.posterior = mlp([D + H + F_, H, 2 * D])
        self.out = nn.Linear(H + D, self.context_size)

    def _init(self, B: int, like: Tensor, state):
        if state is not None and state.get("h") is not None:
            return state["h"], state["z"]
        return like.new_zeros(1, B, self.hidden), like.new_zeros(B, self.latent_sizes[0])

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        x = encodings[0]
        B, _, L = x.shape
        h0, z = self._init(B, x, state)
        fx = self.phi_x(x.transpose(1, 2))
        d, h = self.forward_rnn(self.phi_x(self.previous(x, state).transpose(1, 2)), h0)  # (B, L, H)
        if self.inference == "smoothing":
            a = self.backward_rnn(torch.cat([d, fx], -1).flip(1))[0].flip(1)
            post_in = a
        else:
            post_in = torch.cat([d, fx], -1)
        eps = torch.randn(L, B, self.latent_sizes[0], dtype=x.dtype, device=x.device) if sample else None
        zs, stats = [], []
        for t in range(L):
            mp, sp = gaussian_head(self.prior(torch.cat([z, d[:, t]], -1)), self.min_std)
            mq, sq = gaussian_head(self.posterior(torch.cat([z, post_in[:, t]], -1)), self.min_std)
            if self.residual:
                mq = mq + mp
            z = mq + sq * eps[t] if sample else mq
            zs.append(z)
            stats.append((mp, sp, mq, sq))
        zs = torch.stack(zs, 1)
        mp, sp, mq, sq = (torch.stack(s, 1) for s in zip(*stats))
        context = self.out(torch.cat([d, zs], -1)).transpose(1, 2)
        kl = gaussian_kl(mq, sq, mp, sp).transpose(1, 2)
        log_ratio = (log_normal(zs, mq, sq) - log_normal(zs, mp, sp)).transpose(1, 2)
        return LatentOutput(context=context, kl=[kl], posterior_mean=[mq.transpose(1, 2)],
                            state={"h": h, "z": z, "last": x[..., -1]}, log_ratio=[log_ratio])

    @torch.no_grad()
    def step(self, prev: Tensor, state=None):
        h, z = self._init(prev.shape[0], prev, state)
        d, h = self.forward_rnn(self.phi_x(prev)[:, None], h)
        d = d[:, 0]
        mp, sp = gaussian_head(self.prior(torch.cat([z, d], -1)), self.min_std)
        z = mp + sp * torch.randn_like(mp)
        return self.out(torch.cat([d, z], -1)), {"h": h, "z": z}
