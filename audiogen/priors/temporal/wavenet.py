"""WaveNet (van den Oord et al. 2016) over frames: dilated causal convolutions, gated residual blocks, skips.

``layers`` layers per block with dilations 1, 2, ..., 2**(layers-1), repeated ``blocks`` times, on single samples
(``encoders.stack.stack = 1``) or stacks of samples. The context of frame t reads frames < t only. Convolutions
are 'valid' over an input left-padded with ``receptive_field`` zero frames, so scoring in segments (state = the
last input frames) and frame-by-frame generation (state = each layer's last inputs, a queue per layer as in Fast
WaveNet: linear, not quadratic, in length) give exactly the contexts of one pass over the whole sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiogen.contracts import AutoregressiveModel, LatentOutput


class GatedLayer(nn.Module):
    def __init__(self, channels: int, skip: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)

    def _gate(self, h: Tensor) -> Tensor:
        a, b = h.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, T) -> residual output (B, C, T - dilation), skip (B, S, T - dilation)."""
        g = self._gate(self.conv(x))
        return (x[..., self.dilation:] + self.res(g)) * math.sqrt(0.5), self.skip(g)

    def step(self, x: Tensor, past: Tensor) -> tuple[Tensor, Tensor]:
        """One frame: x (B, C) now, past (B, C) = this layer's input ``dilation`` frames ago."""
        w, b = self.conv.weight, self.conv.bias
        g = self._gate(F.linear(past, w[..., 0], b) + F.linear(x, w[..., 1]))
        return (x + F.linear(g, self.res.weight[..., 0], self.res.bias)) * math.sqrt(0.5), \
            F.linear(g, self.skip.weight[..., 0], self.skip.bias)


class WaveNet(AutoregressiveModel):
    """WaveNet (van den Oord et al. 2016) over frames: dilated causal convolutions, gated residual blocks, skips."""

    latent_sizes: list[int] = []

    def __init__(self, input_size: int = 1, channels: int = 96, skip_channels=None, layers: int = 10,
                 blocks: int = 5, context_size: int = 96):
        super().__init__()
        C, S = int(channels), int(skip_channels or channels)
        self.input_sizes, self.latent_sizes, self.context_size = [int(input_size)], [], int(context_size)
        self.inp = nn.Conv1d(self.input_sizes[0], C, 1)
        self.layers = nn.ModuleList(GatedLayer(C, S, 2**i) for _ in range(int(blocks)) for i in range(int(layers)))
        self.receptive_field = sum(lay.dilation for lay in self.layers)  # frames of past input needed
        # the last layer's residual output feeds nothing (only its skip does): frozen, so that it is declared
        # untrained rather than silently gradient-less (kept in the state dict: checkpoints load unchanged)
        self.layers[-1].res.requires_grad_(False)
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(S, S, 1), nn.ReLU(), nn.Conv1d(S, self.context_size, 1))

    def _run(self, inputs: Tensor, keep_inputs: bool = False):
        """inputs (B, E, R + L) -> context (B, context_size, L) (and every layer's input if asked)."""
        h = self.inp(inputs)
        L = inputs.shape[-1] - self.receptive_field
        skips, seen = 0, []
        for layer in self.layers:
            if keep_inputs:
                seen.append(h)
            h, s = layer(h)
            skips = skips + s[..., s.shape[-1] - L:]
        return self.out(skips), seen

    def _tail(self, x: Tensor, state) -> Tensor:
        if state and state.get("tail") is not None:
            return state["tail"]
        return x.new_zeros(x.shape[0], x.shape[1], self.receptive_field)

    def forward(self, encodings: list[Tensor], state=None, sample: bool = True) -> LatentOutput:
        x = encodings[0]
        inputs = torch.cat([self._tail(x, state), self.previous(x, state)], -1)
        context, _ = self._run(inputs)
        return LatentOutput(context=context, kl=[], posterior_mean=[],
                            state={"tail": inputs[..., inputs.shape[-1] - self.receptive_field:], "last": x[..., -1]})

    @torch.no_grad()
    def step(self, prev: Tensor, state=None, temperature: float = 1.0):  # no latent noise: only the output's
        if state is None:  # queues = each layer's inputs for the zero-padded past, exactly as in forward
            zeros = prev.new_zeros(prev.shape[0], prev.shape[1], self.receptive_field + 1)
            _, seen = self._run(zeros, keep_inputs=True)
            state = {"queues": [h[..., h.shape[-1] - lay.dilation - 1: -1] for h, lay in zip(seen, self.layers)]}
        h = F.linear(prev, self.inp.weight[..., 0], self.inp.bias)
        skips, queues = 0, []
        for layer, q in zip(self.layers, state["queues"]):
            queues.append(torch.cat([q[..., 1:], h[..., None]], -1))
            h, s = layer.step(h, q[..., 0])
            skips = skips + s
        return self.out(skips[..., None])[..., 0], {"queues": queues}
