r"""Fused log-likelihood of the discretized mixture of logistics, with a hand-written backward.

This is the training hot path, so it avoids autograd's per-op tensors: the forward saves its inputs (and, for
mixtures, the log responsibilities), the backward recomputes the bin edges, and single-threaded CPUs run both over
cache-sized chunks of time (1e6 samples x 10 components through ~25 whole-tensor ops is otherwise bound by
memory traffic and page faults, not arithmetic).

Per component, with bin edges ``e_lo = (k - 2**b / 2) / half`` and ``e_hi = (k + 1 - 2**b / 2) / half``
(``half = (2**b - 1) / 2``; i.e. ``y_k -+ h``) and ``inv = exp(-log_s)``::

    hi = (e_hi - mu) inv        nlo = -lo = (mu - e_lo) inv
    log m = log sigmoid(hi) + log sigmoid(nlo) + log(1 - exp(-(hi + nlo)))       (see ``stable.py``)

Each edge is computed from an integer by one division, so the upper edge of bin k and the lower edge of
bin k + 1 are the very same float and the masses telescope to one even in float32. The first bin has
e_lo = -inf and the last e_hi = +inf, which turns the matching terms into log 1 = 0 without
masks. Gradients, with ``a = sigmoid(-hi)``, ``b = sigmoid(-nlo)`` (zeroed where their term is dropped) and
``r = d / expm1(d)``, ``d = hi + nlo`` (zero in the edge bins)::

    d log m / d mu    = -inv (a - b)
    d log m / d log_s = -(a hi + b nlo + r)

The 1/expm1(d) parts of d/dhi and d/dlo cancel in both, so nothing blows up for bins wide against the scale or
narrow against it. ``DiscretizedMixture.log_prob`` with ``stable.logistic_log_bin`` is the plain autograd
reference that the tests compare this with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

# Elements of (B, K, chunk) per step on a single-threaded CPU: 4 MB in float32, small enough to stay in cache and
# to be reused by the allocator (no page faults): about 3x faster than whole tensors for 1e6 x 10.
CPU_CHUNK = 1 << 20


def _chunks(params: Tensor, length: int):
    # GPUs want few large kernels. With several CPU threads every op is a fork/join whose cost is unbounded on a
    # busy machine (measured: ~8 ms for any exp on a shared 2-core box), so there the fewest ops win too.
    if params.device.type != "cpu" or torch.get_num_threads() > 1:
        yield slice(0, length)
        return
    step = max(1, CPU_CHUNK // max(1, params.shape[0] * params.shape[1]))
    for s in range(0, length, step):
        yield slice(s, min(s + step, length))


class _Bins:
    """Bin geometry of one chunk: edges (B, 1, t) in model units and the edge-bin masks."""

    def __init__(self, k: Tensor, num_bins: int, dtype: torch.dtype, open_ends: bool):
        half = (num_bins - 1) / 2.0
        j = (k - num_bins // 2).to(dtype)  # integer: k - 1/2 - half in bin-index units
        self.first, self.last = k == 0, k == num_bins - 1
        self.lo, self.hi = j / half, (j + 1.0) / half  # y_k - h, y_k + h
        if open_ends:
            self.lo.masked_fill_(self.first, -math.inf)
            self.hi.masked_fill_(self.last, math.inf)

    def edges(self, means: Tensor, log_scales: Tensor, min_log_scale: float) -> tuple[Tensor, Tensor, Tensor]:
        """(inv, hi, nlo), each (B, K, t): 1 / scale and the standardised edges, nlo = -lo."""
        inv = log_scales.clamp_min(min_log_scale).neg_().exp_()
        inv.clamp_min_(torch.finfo(inv.dtype).tiny)  # inf * 0 at an open end would be NaN for absurd scales
        hi = torch.sub(self.hi, means).mul_(inv)
        nlo = torch.sub(means, self.lo).mul_(inv)
        return inv, hi, nlo


def _log_mass(hi: Tensor, nlo: Tensor) -> Tensor:
    """log P(bin) per component; open ends (hi or nlo = +inf) give their terms log 1 = 0. Overwrites hi."""
    out = F.logsigmoid(hi).add_(F.logsigmoid(nlo))
    width = hi.add_(nlo).clamp_min_(torch.finfo(hi.dtype).tiny)  # d = 0 only by rounding at absurd scales
    return out.add_(width.neg_().expm1_().neg_().log_())  # log(1 - exp(-d))


def _mix_(joint: Tensor) -> Tensor:
    """log sum_k exp(joint_k) over dim 1, keepdim; turns joint (log pi_k m_k) into log responsibilities in place."""
    m = joint.amax(1, keepdim=True).clamp_min_(torch.finfo(joint.dtype).min)  # all -inf stays -inf, not NaN
    log_sum = joint.sub_(m).exp().sum(1, keepdim=True).log_()  # cheaper than torch.logsumexp on CPU
    joint.sub_(log_sum)
    return log_sum.add_(m)


class DMoLLogProb(torch.autograd.Function):
    """(logits | None, means, log_scales (B, K, T), bin index k (B, 1, T)) -> log P(bin k) (B, 1, T)."""

    @staticmethod
    def forward(ctx, logits, means, log_scales, k, num_bins: int, min_log_scale: float):
        ctx.num_bins, ctx.min_log_scale = num_bins, min_log_scale
        keep = logits is not None and any(ctx.needs_input_grad[:3])
        out = means.new_empty(k.shape)
        log_resp = None
        for s in _chunks(means, k.shape[2]):
            bins = _Bins(k[..., s], num_bins, means.dtype, open_ends=True)
            _, hi, nlo = bins.edges(means[..., s], log_scales[..., s], min_log_scale)
            comp = _log_mass(hi, nlo)
            if logits is None:
                out[..., s] = comp
                continue
            out[..., s] = _mix_(comp.add_(torch.log_softmax(logits[..., s], dim=1)))
            if keep:  # log pi_k m_k / p, for the backward
                if s == slice(0, k.shape[2]):
                    log_resp = comp
                else:
                    log_resp = torch.empty_like(means) if log_resp is None else log_resp
                    log_resp[..., s] = comp
        ctx.save_for_backward(logits, means, log_scales, k, log_resp)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        logits, means, log_scales, k, log_resp = ctx.saved_tensors
        g_means, g_log_scales = torch.empty_like(means), torch.empty_like(log_scales)
        g_logits = torch.empty_like(logits) if logits is not None else None
        tiny = torch.finfo(means.dtype).tiny
        for s in _chunks(means, k.shape[2]):
            bins = _Bins(k[..., s], ctx.num_bins, means.dtype, open_ends=False)
            ls = log_scales[..., s]
            inv, hi, nlo = bins.edges(means[..., s], ls, ctx.min_log_scale)
            g = grad[..., s]
            if logits is None:
                g_comp = g
            else:  # with responsibilities r: d/dcomponent = g r, d/dlogits = g (r - pi)
                g_comp = log_resp[..., s].exp().mul_(g)
                g_logits[..., s] = torch.softmax(logits[..., s], dim=1).mul_(-g).add_(g_comp)
            a = torch.neg(hi).sigmoid_().masked_fill_(bins.last, 0.0)
            b = torch.neg(nlo).sigmoid_().masked_fill_(bins.first, 0.0)
            d = torch.add(hi, nlo).clamp_min_(tiny)
            r = d.div_(torch.expm1(d)).masked_fill_(bins.first | bins.last, 0.0)  # d / expm1(d), in (0, 1]
            slope = hi.mul_(a).add_(nlo.mul_(b)).add_(r)
            g_means[..., s] = a.sub_(b).mul_(inv).mul_(g_comp).neg_()
            g_log_scales[..., s] = slope.mul_(g_comp).neg_().masked_fill_(ls < ctx.min_log_scale, 0.0)
        return g_logits, g_means, g_log_scales, None, None, None
