"""Variational RNN (Chung et al. 2015): a VAE at every step, conditioned on a GRU state that reads the past.

    d_t = GRU([phi_x(x_{t-1}), phi_z(z_{t-1})], d_{t-1})
    p(z_t | d_t),   q(z_t | phi_x(x_t), d_t),   p(x_t | phi_z(z_t), d_t)  (via the pipeline's decoder)

x_t are the frames of a frame-local encoder (stacked samples: the paper's s = 1, 64, 256). With
``residual_posterior`` the posterior mean is the prior mean plus a learned offset (Fraccaro et al.).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import AutoregressiveModel, LatentOutput
from audiogen.layers import gaussian_head, mlp
from audiogen.priors.temporal.cwvae import gaussian_kl, log_normal
from audiogen.priors.temporal.steps import StepLinear, fused_step_linear, gru_update


class VRNN(AutoregressiveModel):
    """Variational RNN (Chung et al. 2015): a VAE at every step, conditioned on a GRU state that reads the past."""

    def __init__(self, input_size: int = 64, latent_size: int = 256, hidden_size: int = 256, feature_size=None,
                 context_size: int = 256, residual_posterior: bool = True, min_std: float = 0.01):
        super().__init__()
        E, D, H = int(input_size), int(latent_size), int(hidden_size)
        F_ = int(feature_size or H)
        self.input_sizes, self.latent_sizes, self.context_size = [E], [D], int(context_size)
        self.hidden, self.min_std, self.residual = H, float(min_std), bool(residual_posterior)
        self.phi_x = mlp([E, F_, F_], last_activation=True)
        self.phi_z = mlp([D, F_, F_], last_activation=True)
        self.rnn = nn.GRUCell(2 * F_, H)
        self.prior = mlp([H, H, 2 * D])
        self.posterior = mlp([F_ + H, H, 2 * D])
        self.out = nn.Linear(H + F_, self.context_size)

    def _cell(self, fx_prev: Tensor, z_prev: Tensor, d: Tensor):
        d = self.rnn(torch.cat([fx_prev, self.phi_z(z_prev)], -1), d)
        return d, gaussian_head(self.prior(d), self.min_std)

    def _init(self, B: int, like: Tensor, state):
        if state is not None and state.get("d") is not None:
            return state["d"], state["z"]
        return like.new_zeros(B, self.hidden), like.new_zeros(B, self.latent_sizes[0])

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        x = encodings[0]
        B, _, L = x.shape
        H, F_ = self.hidden, self.phi_x[0].out_features
        fx = self.phi_x(x.transpose(1, 2))  # (B, L, F) features of x_t, computed for all steps at once
        first = self.phi_x(self.previous(x[..., :1], state).transpose(1, 2))
        fx_prev = torch.cat([first, fx[:, :-1]], 1)  # features of x_{t-1}: phi_x is frame-local
        d, z = self._init(B, x, state)
        eps = torch.randn(L, B, self.latent_sizes[0], dtype=x.dtype, device=x.device) if sample else None
        # The halves of the GRU input and of the posterior's first layer that read x, for all steps at once.
        w_ih, post0 = self.rnn.weight_ih, self.posterior[0]
        gate_x = F.linear(fx_prev, w_ih[:, :F_], self.rnn.bias_ih)
        post_x = F.linear(fx, post0.weight[:, :F_])
        # Everything that reads d_t in one matmul per step: next step's hidden gates, the prior's and the posterior's
        # first layers (the prior runs after the loop unless the residual posterior needs its mean).
        reads_d = [(self.rnn.weight_hh, self.rnn.bias_hh), (post0.weight[:, F_:], post0.bias)]
        if self.residual:
            reads_d.append((self.prior[0].weight, self.prior[0].bias))
        from_d, sizes = fused_step_linear(reads_d)
        phi_z = [StepLinear(self.phi_z[i].weight, self.phi_z[i].bias) for i in (0, 2)]
        gate_z = StepLinear(w_ih[:, F_:])
        post_out = StepLinear(self.posterior[2].weight, self.posterior[2].bias)
        prior_out = StepLinear(self.prior[2].weight, self.prior[2].bias)
        gh = from_d(d)[:, : 3 * H]
        ds, zs, prior_raw, mqs, sqs = [], [], [], [], []
        # unbind, not [:, t]: the backward of L slices would write L zero-filled full-size gradients (O(L^2))
        for t, (gate_x_t, post_x_t) in enumerate(zip(gate_x.unbind(1), post_x.unbind(1))):
            fz = F.elu(phi_z[1](F.elu(phi_z[0](z))))
            d = gru_update(gate_x_t + gate_z(fz), gh, d)
            gh, hq, *hp = from_d(d).split(sizes, -1)
            mq, sq = gaussian_head(post_out(F.elu(hq + post_x_t)), self.min_std)
            if self.residual:
                raw = prior_out(F.elu(hp[0]))
                prior_raw.append(raw)
                mq = mq + raw[:, : self.latent_sizes[0]]
            z = mq + sq * eps[t] if sample else mq
            ds.append(d)
            zs.append(z)
            mqs.append(mq)
            sqs.append(sq)
        dz = torch.stack(ds, 1), torch.stack(zs, 1)
        mq, sq = torch.stack(mqs, 1), torch.stack(sqs, 1)
        mp, sp = gaussian_head(torch.stack(prior_raw, 1) if self.residual else self.prior(dz[0]), self.min_std)
        context = self.out(torch.cat([dz[0], self.phi_z(dz[1])], -1)).transpose(1, 2)
        kl = gaussian_kl(mq, sq, mp, sp).transpose(1, 2)
        log_ratio = (log_normal(dz[1], mq, sq) - log_normal(dz[1], mp, sp)).transpose(1, 2)
        new_state = {"d": d, "z": z, "last": x[..., -1]}
        return LatentOutput(context=context, kl=[kl], posterior_mean=[mq.transpose(1, 2)], state=new_state,
                            log_ratio=[log_ratio])

    @torch.no_grad()
    def step(self, prev: Tensor | None, state=None, temperature: float = 1.0):
        B = prev.shape[0]
        d, z = self._init(B, prev, state)
        d, (mp, sp) = self._cell(self.phi_x(prev), z, d)
        z = mp + sp * (torch.randn_like(mp) * temperature)
        return self.out(torch.cat([d, self.phi_z(z)], -1)), {"d": d, "z": z}
