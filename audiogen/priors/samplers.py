"""Reverse diffusion: from Gaussian noise to a sample, given ``denoise(x_t, step) -> predicted noise``.

``step`` is a (1,) tensor: an integer training step, or a fractional one (fast sampling), which the network reads
through its interpolated step embedding. Coefficients are computed in float64 from the schedules.

Nothing is clamped: DiffWave's own inference clamps every step to [-1, 1] (right for waveforms), which on
normalised latents (|x| up to ~4) gave samples saturated at exactly +-1 (the lab diary, 7 August).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from audiogen.progress import bar
from audiogen.schedules import alpha_bars, fractional_steps

Denoiser = Callable[[Tensor, Tensor], Tensor]


def _noise(shape, generator, device, dtype) -> Tensor:
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def ddpm(denoise: Denoiser, shape, betas: Tensor, steps: Tensor, generator=None, device="cpu",
         dtype=torch.float32) -> Tensor:
    """Ancestral sampling over ``betas``, where network step ``steps[n]`` stands for step n of ``betas``.

    x_{n-1} = (x_n - beta_n / sqrt(1 - abar_n) * eps) / sqrt(alpha_n) + sigma_n z, with sigma_n^2 the posterior
    variance (1 - abar_{n-1}) / (1 - abar_n) * beta_n (no noise on the last step).
    """
    betas = betas.double().cpu()
    abar = alpha_bars(betas)
    x = _noise(shape, generator, device, dtype)
    steps = steps.to(device)  # once, not a host-to-device copy per network call
    for n in bar(range(len(betas) - 1, -1, -1), desc="sample", unit="step"):
        beta, ab = float(betas[n]), float(abar[n])
        eps = denoise(x, steps[n:n + 1])
        x = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
        if n > 0:
            sigma = math.sqrt((1 - float(abar[n - 1])) / (1 - ab) * beta)
            x = x + sigma * _noise(shape, generator, device, dtype)
    return x


def ancestral(denoise: Denoiser, shape, betas: Tensor, generator=None, device="cpu", dtype=torch.float32) -> Tensor:
    """Full DDPM: every training step, in reverse."""
    return ddpm(denoise, shape, betas, torch.arange(len(betas)), generator, device, dtype)


def fast(denoise: Denoiser, shape, train_betas: Tensor, fast_betas: Tensor, generator=None, device="cpu",
         dtype=torch.float32) -> Tensor:
    """DiffWave's fast sampling: DDPM over the short schedule ``fast_betas``, each of its steps mapped onto the
    fractional training step with the same alpha-bar (``audiogen.schedules.fractional_steps``)."""
    steps = fractional_steps(train_betas, fast_betas).float()
    return ddpm(denoise, shape, fast_betas, steps, generator, device, dtype)


def ddim_steps(num_train: int, steps: int) -> Tensor:
    """``steps`` training steps evenly spaced over [0, num_train - 1] (all of them when steps >= num_train)."""
    if steps >= num_train:
        return torch.arange(num_train)
    return torch.linspace(0, num_train - 1, steps, dtype=torch.float64).round().long().unique()


def ddim(denoise: Denoiser, shape, betas: Tensor, steps: int, eta: float = 0.0, generator=None, device="cpu",
         dtype=torch.float32) -> Tensor:
    """DDIM (Song et al. 2021) on a subsequence of the training steps; eta = 0 is deterministic given the
    initial noise, eta = 1 matches DDPM's variance."""
    abar = alpha_bars(betas.double().cpu())
    ts = ddim_steps(len(betas), steps).tolist()
    x = _noise(shape, generator, device, dtype)
    ts_dev = torch.tensor(ts, device=device)
    for i in bar(range(len(ts) - 1, -1, -1), desc="sample", unit="step"):
        t = ts[i]
        a, a_prev = float(abar[t]), (float(abar[ts[i - 1]]) if i > 0 else 1.0)
        eps = denoise(x, ts_dev[i:i + 1])
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * _noise(shape, generator, device, dtype)
    return x


SAMPLERS = ("ancestral", "fast", "ddim")
