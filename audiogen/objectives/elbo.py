"""The negative ELBO of temporal VAEs (gin ``elbo``), with a KL weight and free nats that may be annealed."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiogen.objectives.anneal import as_schedule

FREE_NATS_MODES = ("total", "elementwise")


class ELBO:
    """Negative ELBO per audio sample, with KL weight ``beta`` and free nats (numbers or ``anneal.*`` schedules).

    Free nats come in the two forms found in the literature, selected by ``free_nats_mode``:

    - ``"total"`` (original CW-VAE): per level, the KL per level step (summed over dimensions, averaged over batch
      and steps) is replaced by ``max(0, KL - free_nats)``: no gradient while a level spends less than the budget.
    - ``"elementwise"`` (blvm): every KL element of level l (one dimension at one step) is floored at
      ``free_nats * stride_l / D_l``, i.e. a budget of ``free_nats`` nats per level-1 frame scaled by the level's
      stride and spread over its D_l dimensions; elements below their floor get no gradient.

    The reported ``elbo`` always uses beta = 1 and no free nats: it is the bound, in bits per audio sample.
    """

    def __init__(self, beta=1.0, free_nats=0.0, free_nats_mode: str = "total"):
        if free_nats_mode not in FREE_NATS_MODES:
            raise ValueError(f"elbo.free_nats_mode must be one of {FREE_NATS_MODES}, got {free_nats_mode!r}")
        self.beta, self.free_nats, self.mode = as_schedule(beta), as_schedule(free_nats), free_nats_mode

    def __call__(self, out: dict, step: int) -> dict[str, Tensor]:
        """``out`` from ``Pipeline.score``: rec (B,), kl list of (B, D_l, L_l) masked, level_masks, samples (B,),
        level_strides."""
        n = out["samples"].sum().clamp_min(1)
        beta, fn = self.beta(step), self.free_nats(step)
        kl_total = [k.sum() for k in out["kl"]]
        penalised = []
        for k, m, stride in zip(out["kl"], out["level_masks"], out["level_strides"]):
            if fn <= 0:
                penalised.append(k.sum())
            elif self.mode == "total":
                steps = m.sum().clamp_min(1)
                per_step = k.sum() / steps
                penalised.append(torch.clamp(per_step - fn, min=0) * steps)
            else:
                floor = fn * stride / k.shape[1]
                penalised.append((torch.clamp(k, min=floor) * m[:, None, :]).sum())
        rec = out["rec"].sum()
        loss = (-rec + beta * sum(penalised)) / n
        ln2 = math.log(2)
        logs = {"loss": loss, "elbo": (-rec + sum(kl_total)) / n / ln2, "rec": -rec / n / ln2,
                "beta": torch.tensor(beta), "free_nats": torch.tensor(fn)}
        for i, k in enumerate(kl_total):
            logs[f"kl_z{i + 1}"] = k / n / ln2
        return logs
