"""Deterministic autoregressive baseline: MLP on frame x_{t-1} -> LSTM -> context for predicting frame t.

No latent variables, so its score is an exact log-likelihood (not a bound).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audiogen.contracts import AutoregressiveModel, LatentOutput
from audiogen.layers import mlp


class LSTMModel(AutoregressiveModel):
    """Deterministic autoregressive model: MLP on frame x_{t-1}, then an LSTM; exact likelihood (no latents)."""

    latent_sizes: list[int] = []

    def __init__(self, input_size: int = 64, hidden_size: int = 256, feature_size=None, num_layers: int = 1,
                 context_size: int = 256):
        super().__init__()
        E, H = int(input_size), int(hidden_size)
        F_ = int(feature_size or H)
        self.input_sizes, self.latent_sizes, self.context_size = [E], [], int(context_size)
        self.phi_x = mlp([E, F_, F_], last_activation=True)
        self.rnn = nn.LSTM(F_, H, num_layers=int(num_layers), batch_first=True)
        self.out = nn.Linear(H, self.context_size)

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        x = encodings[0]
        hc = state.get("hc") if state else None
        y, hc = self.rnn(self.phi_x(self.previous(x, state).transpose(1, 2)), hc)
        return LatentOutput(context=self.out(y).transpose(1, 2), kl=[], posterior_mean=[],
                            state={"hc": hc, "last": x[..., -1]})

    @torch.no_grad()
    def step(self, prev: Tensor, state=None, temperature: float = 1.0):  # no latent noise: only the output's
        y, hc = self.rnn(self.phi_x(prev)[:, None], state.get("hc") if state else None)
        return self.out(y[:, 0]), {"hc": hc}
