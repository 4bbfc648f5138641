"""Diffusion noise schedules (gin ``schedules.<name>``), and the schedule arithmetic the samplers share.

A schedule is a small object; calling it returns the betas of its training steps as a validated float64 1-D
tensor (0 < beta < 1). Float64 because alpha-bar is a long product of numbers close to 1, and the fast sampler
matches alpha-bars between two schedules.

    priors.diffwave.schedule = @schedules.cosine()
    schedules.cosine.steps = 200
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from audiogen.errors import ConfigError


def validate_betas(betas, where: str = "noise schedule") -> Tensor:
    """float64 1-D tensor of betas, each strictly in (0, 1), whose alpha-bar stays above zero."""
    b = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
    if b.ndim != 1 or b.numel() == 0:
        raise ConfigError(f"{where}: betas must be a non-empty 1-D list, got shape {tuple(b.shape)}",
                          fix="give one beta per diffusion step, e.g. [1e-4, 1e-3, 1e-2]")
    bad = ~(torch.isfinite(b) & (b > 0) & (b < 1))
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ConfigError(f"{where}: beta[{i}] = {float(b[i])!r} is not strictly between 0 and 1",
                          fix="every beta is a per-step noise variance: use values in (0, 1), e.g. 1e-4 to 0.05")
    if alpha_bars(b)[-1] <= 0:  # float64 underflow: the last steps would divide by zero when sampling
        raise ConfigError(f"{where}: the cumulative product of (1 - beta) underflows to 0 after {b.numel()} steps",
                          fix="use fewer steps or smaller betas so that some signal survives to the last step")
    return b


def alpha_bars(betas: Tensor) -> Tensor:
    """alpha-bar_t = prod_{s <= t} (1 - beta_s): the signal's share of variance after step t."""
    return torch.cumprod(1 - betas.double(), 0)


def _check_steps(steps, where: str) -> int:
    if int(steps) != steps or steps < 1:
        raise ConfigError(f"{where}: steps = {steps!r} must be a positive integer", fix=f"set {where}.steps = 50")
    return int(steps)


@dataclass
class LinearSchedule:
    """Betas evenly spaced from ``beta_start`` to ``beta_end`` (DiffWave: 1e-4 to 0.05 over 50 steps)."""

    beta_start: float = 1e-4
    beta_end: float = 0.05
    steps: int = 50

    def __post_init__(self):
        self.steps = _check_steps(self.steps, "schedules.linear")

    def __call__(self) -> Tensor:
        return validate_betas(torch.linspace(self.beta_start, self.beta_end, self.steps, dtype=torch.float64),
                              "schedules.linear")


@dataclass
class ScaledLinearSchedule:
    """Linear in sqrt(beta), then squared (latent diffusion: 0.00085 to 0.012 over 1000 steps).

    Spends more steps at low noise than ``linear`` with the same endpoints."""

    beta_start: float = 0.00085
    beta_end: float = 0.012
    steps: int = 1000

    def __post_init__(self):
        self.steps = _check_steps(self.steps, "schedules.scaled_linear")
        for name in ("beta_start", "beta_end"):  # checked here: sqrt of a negative would only show up as NaN
            v = getattr(self, name)
            if not 0 < v < 1:
                raise ConfigError(f"schedules.scaled_linear: {name} = {v!r} is not strictly between 0 and 1",
                                  fix="use betas in (0, 1), e.g. 0.00085 to 0.012")

    def __call__(self) -> Tensor:
        root = torch.linspace(math.sqrt(self.beta_start), math.sqrt(self.beta_end), self.steps, dtype=torch.float64)
        return validate_betas(root**2, "schedules.scaled_linear")


@dataclass
class CosineSchedule:
    """Nichol & Dhariwal (2021) cosine schedule: alpha-bar follows cos^2, betas clipped at ``max_beta``.

    alpha-bar(t) = f(t) / f(0) with f(t) = cos^2(pi/2 (t/T + s) / (1 + s)); beta_t = 1 - alpha-bar(t+1) /
    alpha-bar(t), clipped because the last steps would otherwise reach 1."""

    steps: int = 1000
    s: float = 0.008
    max_beta: float = 0.999

    def __post_init__(self):
        self.steps = _check_steps(self.steps, "schedules.cosine")

    @staticmethod
    def alpha_bar(u: Tensor, s: float) -> Tensor:
        """Continuous alpha-bar at u = t / T in [0, 1] (before normalisation by its value at 0)."""
        return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    def __call__(self) -> Tensor:
        u = torch.arange(self.steps + 1, dtype=torch.float64) / self.steps
        f = self.alpha_bar(u, self.s)
        betas = (1 - f[1:] / f[:-1]).clamp(max=self.max_beta)
        return validate_betas(betas, "schedules.cosine")


@dataclass
class ExplicitSchedule:
    """The betas listed in gin: ``schedules.explicit.betas = [1e-4, 1e-3, 1e-2, 0.05]``."""

    betas: Sequence[float] = ()

    def __call__(self) -> Tensor:
        return validate_betas(list(self.betas), "schedules.explicit")


BUILTIN = {
    "linear": LinearSchedule,
    "scaled_linear": ScaledLinearSchedule,
    "cosine": CosineSchedule,
    "explicit": ExplicitSchedule,
}


def as_betas(schedule, where: str = "noise schedule") -> Tensor:
    """Betas from a schedule object, or from a plain list of betas."""
    if schedule is None:
        return LinearSchedule()()
    if callable(schedule):
        betas = schedule()
        if callable(betas):  # gin's @schedules.linear (the factory) rather than @schedules.linear() (a schedule)
            betas = betas()
        return validate_betas(betas, where)
    return validate_betas(schedule, where)


def fractional_steps(train_betas: Tensor, fast_betas: Tensor) -> Tensor:
    """Place each step of a short inference schedule on the training schedule (DiffWave's fast sampling).

    Fast step s has alpha-bar a_s. It falls between training steps t and t+1 (abar_t >= a_s >= abar_{t+1}); its
    position is t + w with w chosen so that sqrt(alpha-bar) interpolated linearly between t and t+1 equals
    sqrt(a_s). The network, trained on integer steps, is then asked about step t + w with its step embedding
    interpolated the same way. Returns float64 (S,).
    """
    ta = alpha_bars(train_betas).sqrt()
    fa = alpha_bars(fast_betas).sqrt()
    out = []
    lo, hi = float(ta[-1]), float(ta[0])
    for s, a in enumerate(fa.tolist()):
        if math.isclose(a, lo, rel_tol=1e-9) or math.isclose(a, hi, rel_tol=1e-9):
            a = min(max(a, lo), hi)  # rounding at an end point (a fast schedule that ends where training ends)
        if not lo <= a <= hi:
            raise ConfigError(
                f"fast sampling step {s} has alpha-bar {a * a:.6g}, outside the training schedule's range "
                f"[{lo * lo:.6g}, {hi * hi:.6g}]",
                fix="choose fast_betas whose cumulative product of (1 - beta) stays within the training schedule's")
        # last t with ta[t] >= a; when a equals the final alpha-bar this is T-1 and w = 0
        t = int((ta >= a).nonzero()[-1])
        w = 0.0 if t == len(ta) - 1 else (float(ta[t]) - a) / (float(ta[t]) - float(ta[t + 1]))
        out.append(t + w)
    return torch.tensor(out, dtype=torch.float64)
