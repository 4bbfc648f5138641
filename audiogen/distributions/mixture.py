"""Mixture bookkeeping shared by the mixture distributions: weights, component choice, mixture mean."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """U(0, 1) noise shaped like ``like``, kept off 0 and 1 so that logs of it stay finite."""
    u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    eps = torch.finfo(like.dtype).eps
    return u.clamp(eps, 1.0 - eps)


def gumbel_argmax(logits: Tensor, dim: int = 1, generator: torch.Generator | None = None,
                  temperature: float = 1.0) -> Tensor:
    """Index drawn from softmax(logits) along ``dim`` (Gumbel-max trick: one vectorised pass, no loops); the Gumbel
    noise scaled by ``temperature`` (0: the most likely index), as the nn~ export does."""
    g = -torch.log(-torch.log(uniform(logits, generator)))
    return (logits + g * temperature).argmax(dim, keepdim=True)


def mix_log_prob(logits: Tensor | None, component_log_prob: Tensor) -> Tensor:
    """log sum_k pi_k p_k over the component axis 1; ``logits`` None means a single component."""
    if logits is None:
        return component_log_prob
    return torch.logsumexp(torch.log_softmax(logits, dim=1) + component_log_prob, dim=1, keepdim=True)


def pick(logits: Tensor | None, *per_component: Tensor, generator: torch.Generator | None = None,
         temperature: float = 1.0) -> list[Tensor]:
    """Draw one component per position and gather its parameters, each (B, 1, T)."""
    if logits is None:
        return list(per_component)
    idx = gumbel_argmax(logits, dim=1, generator=generator, temperature=temperature)
    return [p.gather(1, idx) for p in per_component]


def mix_mean(logits: Tensor | None, means: Tensor) -> Tensor:
    """sum_k pi_k mu_k, (B, 1, T)."""
    if logits is None:
        return means
    return (torch.softmax(logits, dim=1) * means).sum(1, keepdim=True)
