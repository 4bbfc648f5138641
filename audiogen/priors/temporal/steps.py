"""Linear layers inside a recurrence, with their weight gradients computed once for all steps.

A step-by-step loop over L steps of a batch of B makes autograd compute every weight's gradient L times, each an
outer product of B rows written over the whole weight and then added to its ``.grad``: on a CPU with B = 4 that is
memory traffic over the weights, 3 passes per step, not arithmetic. :class:`StepLinear` gives autograd only the
input gradient per step and keeps (input, output gradient) pairs; once backpropagation has passed every step it
forms the weight and bias gradients as one (L B)-row matmul. Forward values are those of ``F.linear``; gradients
equal autograd's up to the order of the float sums.

The ordering needs no hook: each step reads a token produced from the weights by ``_Collect``, so the engine runs
``_Collect.backward`` only after every step that depends on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


class _Pairs:
    """What the steps leave for the weight gradient; holds no graph node, so nothing forms a reference cycle."""

    def __init__(self, weight: Tensor, bias: Tensor | None):
        self.weight, self.bias = weight, bias
        self.inputs: list[Tensor] = []
        self.grads: list[Tensor] = []


class _Collect(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pairs: _Pairs, weight: Tensor, bias: Tensor | None):
        ctx.pairs = pairs
        return weight.new_zeros(())

    @staticmethod
    @once_differentiable
    def backward(ctx, _):
        p = ctx.pairs
        if not p.grads:
            return None, None, None
        g, x = torch.cat(p.grads), torch.cat(p.inputs)
        p.grads.clear()
        p.inputs.clear()
        return None, g.t().mm(x), (g.sum(0) if p.bias is not None else None)


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, token: Tensor, pairs: _Pairs):
        ctx.pairs = pairs
        ctx.save_for_backward(x)
        return F.linear(x, pairs.weight, pairs.bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        p = ctx.pairs
        p.inputs.append(x)
        p.grads.append(grad)
        return grad.mm(p.weight), None, None


class StepLinear:
    """``F.linear(x, weight, bias)`` for x of shape (B, in), called once per step of a recurrence.

    Build one per forward pass (it holds that pass's inputs until backward). Outside autograd it is plain
    ``F.linear``. ``weight`` may be any tensor computed from parameters (a slice, a concatenation).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None):
        tracked = torch.is_grad_enabled() and (weight.requires_grad or (bias is not None and bias.requires_grad))
        self.pairs = _Pairs(weight.detach(), None if bias is None else bias.detach())
        self.token = _Collect.apply(self.pairs, weight, bias) if tracked else None

    def __call__(self, x: Tensor) -> Tensor:
        if self.token is None:
            return F.linear(x, self.pairs.weight, self.pairs.bias)
        return _Step.apply(x, self.token, self.pairs)


def fused_step_linear(layers: list[tuple[Tensor, Tensor]]) -> tuple[StepLinear, list[int]]:
    """One :class:`StepLinear` for several (weight, bias) layers that read the same input: one matmul per step
    instead of one per layer; returns it and the output sizes to ``split`` its result by."""
    return (StepLinear(torch.cat([w for w, _ in layers]), torch.cat([b for _, b in layers])),
            [w.shape[0] for w, _ in layers])


def gru_update(gi: Tensor, gh: Tensor, h: Tensor) -> Tensor:
    """``nn.GRUCell`` from its input and hidden projections, each (B, 3H) with its bias (gates r, z, n)."""
    ir, iz, i_n = gi.chunk(3, -1)
    hr, hz, hn = gh.chunk(3, -1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(i_n + r * hn)
    return (h - n) * z + n  # (1 - z) n + z h, in the order of torch's own cell


def gru_sequence(gru: nn.GRU, inputs: Tensor, h0: Tensor | None = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """A one-layer batch-first ``nn.GRU`` over (B, L, in) (``reverse``: from the last step to the first) ->
    outputs (B, L, H) in input order and the final state (1, B, H). The input gates for all steps are one matmul
    and the hidden-gate weights get their gradient once (:class:`StepLinear`); torch's CPU GRU pays a weight
    gradient per step."""
    if gru.num_layers != 1 or gru.bidirectional or not gru.batch_first:
        raise ValueError("gru_sequence runs one-layer, one-direction, batch-first GRUs")
    gate_x = F.linear(inputs, gru.weight_ih_l0, gru.bias_ih_l0)
    from_h = StepLinear(gru.weight_hh_l0, gru.bias_hh_l0)
    h = inputs.new_zeros(inputs.shape[0], gru.hidden_size) if h0 is None else h0[0]
    steps = gate_x.unbind(1)
    hs = []
    for gate_x_t in reversed(steps) if reverse else steps:
        h = gru_update(gate_x_t, from_h(h), h)
        hs.append(h)
    return torch.stack(hs[::-1] if reverse else hs, 1), h[None]
