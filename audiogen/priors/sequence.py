"""A prior over sequences of vectors (latent datasets, .npy sequences) built from any temporal latent model.

x (B, D, L) -> per-level embeddings -> latent model (VRNN, SRNN, CW-VAE, LSTM, WaveNet) -> per-frame head ->
output distribution(s) over the D dimensions of frame t. The embedding of level 1 is a 1x1 convolution
(frame-local, as autoregressive models need); further levels (CW-VAE) are strided convolutions over level 1.
``distributions`` with ``dims`` split the D dimensions into groups with their own distribution, e.g. pen strokes
(dx, dy, pen-up) as a Gaussian mixture over 2 dims plus a Bernoulli over 1. log_prob is an ELBO (a bound) when
the model has latent variables, exact otherwise; densities for continuous outputs (nats, not bits of audio).
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audiogen.contracts import Prior, PriorOutput
from audiogen.errors import ConfigError
from audiogen.progress import bar


class SequencePrior(Prior):
    """A prior over vector sequences from any temporal latent model (``model``), with an output distribution per
    group of dimensions (``distributions``, ``dims``)."""

    def __init__(self, latent_size: int = 8, model: nn.Module | None = None, distributions=None, dims=None):
        super().__init__()
        if model is None:
            raise ValueError("priors.sequence.model is not set (e.g. priors.sequence.model = @priors.vrnn())")
        if distributions is None:
            raise ValueError("priors.sequence.distributions is not set "
                             "(e.g. priors.sequence.distributions = [@distributions.gaussian()])")
        self.latent_size, self.model = int(latent_size), model
        dists = list(distributions) if isinstance(distributions, (list, tuple)) else [distributions]
        dims = [self.latent_size] if dims is None else [int(d) for d in dims]
        if len(dims) != len(dists) or sum(dims) != self.latent_size:
            raise ValueError(f"priors.sequence.dims {dims} must give one group size per distribution "
                             f"({len(dists)}) summing to latent_size {self.latent_size}")
        self.dists, self.dims = nn.ModuleList(dists), dims
        sizes, strides = model.input_sizes, model.level_strides
        self.embed = nn.ModuleList([nn.Conv1d(self.latent_size, sizes[0], 1)])
        for i in range(1, len(strides)):
            r = strides[i] // strides[i - 1]
            self.embed.append(nn.Sequential(nn.ELU(), nn.Conv1d(sizes[i - 1], sizes[i], r, stride=r)))
        self.head = nn.Conv1d(model.context_size, sum(d * q.num_params for d, q in zip(dims, dists)), 1)

    @property
    def fixed_dims(self) -> list[int]:
        """Dimensions that must not be normalised (binary targets such as a pen-up flag)."""
        out, start = [], 0
        for d, q in zip(self.dims, self.dists):
            if getattr(q, "is_binary", False):
                out += list(range(start, start + d))
            start += d
        return out

    @property
    def is_bound(self) -> bool:
        return len(self.model.latent_sizes) > 0

    def _levels(self, x: Tensor) -> list[Tensor]:
        levels = [self.embed[0](x)]
        for conv in self.embed[1:]:
            levels.append(conv(levels[-1]))
        return levels

    def _groups(self, params: Tensor):
        """(B, P_total, L) -> per group (distribution, params (B * D_g, P_g, L), slice of dims)."""
        B, _, L = params.shape
        p0, d0 = 0, 0
        for d, q in zip(self.dims, self.dists):
            n = d * q.num_params
            # parameter-major within the group; each latent dimension becomes its own sequence in the batch
            p = rearrange(params[:, p0: p0 + n], "b (p d) l -> (b d) p l", d=d)
            yield q, p, slice(d0, d0 + d)
            p0, d0 = p0 + n, d0 + d

    def log_prob(self, x: Tensor, mask: Tensor | None = None, sample: bool = True) -> PriorOutput:
        B, D, L = x.shape
        if D != self.latent_size:
            raise ValueError(f"sequences have {D} dimensions but the prior models {self.latent_size}")
        if mask is None:
            mask = torch.ones(B, L, dtype=torch.bool, device=x.device)
        top = self.model.level_strides[-1]
        pad = (-L) % top
        x = F.pad(x * mask[:, None].to(x.dtype), (0, pad))  # padded content cannot reach any score
        m = F.pad(mask, (0, pad))
        out = self.model(self._levels(x), sample=sample)
        params = self.head(out.context)
        rec = x.new_zeros(B)
        for q, p, sl in self._groups(params):
            target = rearrange(x[:, sl], "b d l -> (b d) 1 l")
            lp = q.log_prob(p, target).view(B, -1, x.shape[-1])
            rec = rec + (lp * m[:, None]).sum((1, 2))
        terms = {"rec_nll": -rec}  # costs in nats per sequence
        kl_total = x.new_zeros(B)
        for i, (k, s) in enumerate(zip(out.kl, self.model.level_strides)):
            kl = (k * m[:, ::s][:, None, : k.shape[-1]]).sum((1, 2))
            terms[f"kl_z{i + 1}"] = kl
            kl_total = kl_total + kl
        return PriorOutput(log_prob=rec - kl_total, frames=mask.sum(1), terms=terms, is_bound=self.is_bound)

    def _draw(self, params: Tensor, mean: bool, temperature: float = 1.0) -> Tensor:
        B, _, L = params.shape
        parts = []
        for q, p, sl in self._groups(params):
            if mean or temperature == 1.0:
                y = q.mean(p) if mean else q.sample(p)
            else:
                y = q.sample(p, temperature=temperature)
            parts.append(y.view(B, sl.stop - sl.start, L))
        return torch.cat(parts, 1)

    @torch.no_grad()
    def sample(self, n: int, length: int, mean: bool = False, temperature: float = 1.0) -> Tensor:
        """(n, latent_size, length); ``mean`` takes each frame's output mean instead of a draw; ``temperature``
        scales every noise draw (latent z from the model's prior, the output distribution's), 0 for none."""
        if temperature < 0:
            raise ValueError(f"temperature = {temperature} must be >= 0")
        if temperature != 1.0 and not mean:  # checked once here, not per frame in the sampling loop
            for q in self.dists:
                if "temperature" not in inspect.signature(q.sample).parameters:
                    raise ConfigError(f"sampling temperature {temperature:g}: {type(q).__name__} has none",
                                      fix="sample at temperature 1, or use Gaussian (mixture) / Bernoulli outputs")
        device = self.head.weight.device
        kw = {} if temperature == 1.0 else {"temperature": temperature}  # models without latents need not take it
        if not getattr(self.model, "autoregressive", False):
            top = self.model.level_strides[-1]
            context, _ = self.model.generate(n, math.ceil(length / top) * top, **kw)
            return self._draw(self.head(context), mean, temperature)[..., :length]
        prev, state, frames = torch.zeros(n, self.model.input_sizes[0], device=device), None, []
        for _ in bar(range(length), desc="sample", unit="frame"):
            context, state = self.model.step(prev, state, **kw)
            x = self._draw(self.head(context[..., None]), mean, temperature)
            frames.append(x)
            prev = self.embed[0](x)[..., 0]  # level 1 is frame-local: one frame in, its embedding out
        return torch.cat(frames, -1)
