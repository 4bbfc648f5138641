"""A sigmoid noise schedule for diffusion priors (e.g. ``priors.diffwave``).

The contract of a schedule (``audiogen.contracts.check_schedule``): the registered factory builds a schedule object
(gin ``@schedules.sigmoid()``); calling the object returns the betas of the training steps, a float64 1-D tensor,
every beta strictly in (0, 1), with alpha-bar = prod(1 - beta) above zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from audiogen.errors import ConfigError
from audiogen.schedules import validate_betas


@dataclass
class SigmoidSchedule:
    """Betas rising along a sigmoid from ``beta_start`` to ``beta_end``: few noisy steps at both ends."""

    beta_start: float = 1e-4
    beta_end: float = 0.05
    steps: int = 200
    sharpness: float = 6.0  # the sigmoid is read over [-sharpness, sharpness]

    def __post_init__(self):  # checked when gin builds it: a clear error, not an IndexError from an empty range
        if int(self.steps) != self.steps or self.steps < 2:
            raise ConfigError(f"schedules.sigmoid: steps = {self.steps!r} must be an integer >= 2",
                              fix="set schedules.sigmoid.steps = 200")

    def __call__(self) -> Tensor:
        s = torch.sigmoid(torch.linspace(-self.sharpness, self.sharpness, int(self.steps), dtype=torch.float64))
        s = (s - s[0]) / (s[-1] - s[0])  # exactly 0 .. 1, so the end points are beta_start and beta_end
        # validate_betas: one clear error for betas outside (0, 1) or an alpha-bar that underflows
        return validate_betas(self.beta_start + (self.beta_end - self.beta_start) * s, "schedules.sigmoid")
