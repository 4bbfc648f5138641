"""Schedules of a scalar over training steps (KL weight, free nats): gin ``anneal.constant`` / ``linear`` / ``cosine``
(kind ``anneal``: plugins add more with ``register_anneal``).

Each returns a callable ``step -> value``. For two schedules in one config use gin scopes, e.g.
``elbo.beta = @beta/anneal.linear()`` and ``elbo.free_nats = @fn/anneal.cosine()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    kind: str
    start: float
    end: float
    hold: int = 0  # steps at ``start`` before annealing begins
    steps: int = 0  # steps of annealing from start to end

    def __call__(self, step: int) -> float:
        if self.kind == "constant" or step <= self.hold:
            return self.start
        if step >= self.hold + self.steps:
            return self.end
        frac = (step - self.hold) / self.steps
        if self.kind == "cosine":
            frac = 0.5 * (1 - math.cos(math.pi * frac))
        return self.start + (self.end - self.start) * frac


def constant(value: float = 1.0) -> Schedule:
    """The same value at every step."""
    return Schedule("constant", float(value), float(value))


def linear(start: float = 0.0, end: float = 1.0, steps: int = 10000, hold: int = 0) -> Schedule:
    """``start`` for ``hold`` steps, then linearly to ``end`` over ``steps`` steps (KL warm-up)."""
    return Schedule("linear", float(start), float(end), int(hold), max(1, int(steps)))


def cosine(start: float = 4.0, end: float = 0.0, hold: int = 10000, steps: int = 10000) -> Schedule:
    """Hold ``start`` for ``hold`` steps, then a half-cosine to ``end`` over ``steps`` (free nats as in blvm)."""
    return Schedule("cosine", float(start), float(end), int(hold), max(1, int(steps)))


def as_schedule(value) -> Schedule:
    """Numbers mean a constant schedule."""
    return value if callable(value) else Schedule("constant", float(value), float(value))
