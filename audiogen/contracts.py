"""What a component must implement. Plugin authors subclass these and run ``check_*`` in their tests.

Shapes (channels first, like ``torch.nn.Conv1d``):
- audio: float (B, 1, T) in [-1, 1] at the component's sample rate;
- latent frames: float (B, C, L) with L = ceil(T / hop);
- masks: bool (B, T) or (B, L), True on real (not padded) positions.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


class Encoder(nn.Module):
    """Audio (B, 1, T) -> latent frames (B, latent_size, ceil(T / hop)).

    Attributes: ``hop`` (samples per frame), ``latent_size`` (channels of the output), ``sample_rate`` (None if the
    encoder works at any rate; else the rate it requires), ``receptive_field`` (samples of context needed on each
    side for chunked encoding to equal whole-file encoding; None if unknown, then files are encoded whole),
    ``batch_seconds`` (audio seconds per forward call that ``audiogen encode`` aims at when it cuts files into
    windows: small where activations must stay in cache, larger where each call has a fixed cost). Windowed
    encoding pads a file with zeros to a multiple of ``hop``, as the built-in encoders pad their input.
    Ladder encoders (one representation per level, for hierarchical models) override ``encode_levels``.
    """

    hop: int
    latent_size: int
    sample_rate: int | None = None
    receptive_field: int | None = None
    batch_seconds: float = 0.5
    frame_local: bool = False  # frame t's output depends only on samples of frame t (autoregressive models need it)

    def forward(self, audio: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_levels(self, audio: Tensor) -> list[Tensor]:
        """One representation per level, from one pass; level i has hop ``level_hops[i]``."""
        return [self(audio)]

    @property
    def level_hops(self) -> list[int]:
        return [self.hop]

    @property
    def level_sizes(self) -> list[int]:
        return [self.latent_size]

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop)


def chunk_spans(n: int, step: int, chunk: int, context: int) -> list[tuple[int, int, int, int]]:
    """How a signal of ``n`` positions is processed in chunks so that the result equals one pass: chunks of
    ``chunk`` positions (a multiple of ``step``), each read with ``context`` positions (rounded up to ``step``) of
    real input on both sides. Returns (read start, read stop, kept start, kept stop) per chunk."""
    ctx = math.ceil(context / step) * step
    chunk = max(step, chunk // step * step)
    return [(max(0, a - ctx), min(n, a + chunk + ctx), a, min(n, a + chunk)) for a in range(0, n, chunk)]


class Decoder(nn.Module):
    """Latent frames (B, latent_size, L) -> (B, out_channels, L * hop).

    ``out_channels == 1`` means audio in [-1, 1]; otherwise the output holds the parameters of an output
    distribution (``OutputDistribution.num_params`` channels) for every sample.
    """

    hop: int
    latent_size: int
    out_channels: int = 1
    sample_rate: int | None = None
    frame_local: bool = False  # output samples of frame t depend only on latent frame t

    def forward(self, latents: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class PriorOutput:
    """Score of a batch of sequences. ``log_prob`` is a log-likelihood or a lower bound (nats, per sequence);
    ``terms`` breaks it down (e.g. reconstruction, KL per level), each (B,); ``frames`` counts scored frames."""

    log_prob: Tensor
    frames: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    is_bound: bool = False

    def bits_per_frame(self) -> float:
        """Sequence-length weighted: total -log2 p over total frames."""
        return float(-self.log_prob.detach().sum() / math.log(2) / self.frames.sum())


class Prior(nn.Module):
    """A latent model / prior over sequences x (B, C, L) with mask (B, L).

    ``log_prob(x, mask) -> PriorOutput``; ``sample(n, length) -> (n, C, length)``; ``latent_size`` = C.
    ``has_likelihood`` is False for priors without a likelihood (diffusion models): their ``log_prob`` raises
    NotImplementedError and they are trained through their own ``training_loss``.
    """

    latent_size: int
    has_likelihood: bool = True

    def log_prob(self, x: Tensor, mask: Tensor | None = None) -> PriorOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, n: int, length: int) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_loss(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        """What ``audiogen train-prior`` minimises: by default -log p (or the negative bound) per frame.
        Priors without a likelihood (diffusion) override this."""
        out = self.log_prob(x, mask)
        frames = out.frames.sum().clamp_min(1)
        logs = {"loss": -out.log_prob.sum() / frames, "nats_per_frame": -out.log_prob.sum().detach() / frames}
        for k, v in out.terms.items():
            logs[k] = v.sum().detach() / frames
        return logs


@dataclass
class LatentOutput:
    """What a temporal latent model returns for a batch (all from one pass over the encodings).

    ``context``: (B, context_size, L1) for the decoder; ``kl``: per level, elementwise KL(q || p) (B, D_l, L_l) in
    nats; ``posterior_mean``: per level (B, D_l, L_l) (for active units and probes); ``state``: what to pass as
    ``state`` to continue the sequence (segmented evaluation); ``log_ratio``: per level, elementwise
    log q(z|x) - log p(z) at the sampled z (B, D_l, L_l), for importance-weighted bounds.
    """

    context: Tensor
    kl: list[Tensor]
    posterior_mean: list[Tensor]
    state: object = None
    log_ratio: list[Tensor] | None = None


class LatentModel(nn.Module):
    """The stochastic core of an end-to-end temporal VAE (e.g. the Clockwork VAE).

    ``forward(encodings, state=None) -> LatentOutput`` takes one encoder representation per level
    (``Encoder.encode_levels``), with level l having ``level_strides[l]`` level-1 frames per step;
    ``generate(n, length, state=None) -> (context (n, context_size, length), state)`` samples from the prior.
    Attributes: ``input_sizes`` (channels per level it expects), ``level_strides``, ``latent_sizes``,
    ``context_size`` (the decoder's ``latent_size``).
    """

    input_sizes: list[int]
    level_strides: list[int]
    latent_sizes: list[int]
    context_size: int
    autoregressive: bool = False

    def forward(self, encodings: list[Tensor], state=None) -> LatentOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def generate(self, n: int, length: int, state=None):  # pragma: no cover - abstract
        raise NotImplementedError


class AutoregressiveModel(LatentModel):
    """A latent model whose step t also reads the frames before t (VRNN, SRNN, LSTM, WaveNet).

    ``forward`` gets the encodings of x_1..x_L from a ``frame_local`` encoder and feeds frame t-1's encoding into
    the prediction of frame t (teacher forcing); ``state`` carries the last encoding across segments.
    Generation cannot run without the decoder and encoder in the loop, so these models implement
    ``step(prev (B, E) or None, state) -> (context (B, context_size), state)`` instead of ``generate``: draw
    step t's latents from the prior given x_{<t}; the pipeline decodes, samples and re-encodes each frame.
    ``latent_sizes`` is empty for deterministic models (LSTM, WaveNet), whose score is then exact.
    """

    autoregressive = True
    level_strides = [1]

    def step(self, prev: Tensor | None, state=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def generate(self, n: int, length: int, state=None):
        raise NotImplementedError(f"{type(self).__name__} samples frame by frame through the pipeline "
                                  "(Pipeline.generate), not on its own")

    @staticmethod
    def previous(encoding: Tensor, state: dict | None) -> Tensor:
        """(B, E, L) encodings of x_t -> encodings of x_{t-1}: shifted right, frame 0 from ``state['last']``
        (the last encoding of the previous segment) or zeros at the start of a sequence."""
        first = state["last"][..., None] if state and state.get("last") is not None else encoding[..., :1] * 0
        return torch.cat([first, encoding[..., :-1]], -1)


class OutputDistribution(nn.Module):
    """A distribution over each audio sample, parametrised by ``num_params`` decoder channels.

    ``log_prob(params (B, P, T), target (B, 1, T)) -> (B, 1, T)`` in nats (a log probability mass for discrete
    distributions on the input coding's grid); ``sample(params) -> (B, 1, T)``.
    """

    num_params: int

    def log_prob(self, params: Tensor, target: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, params: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ContractError(AssertionError):
    pass


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ContractError(msg)


def check_encoder(enc: Encoder, num_samples: int | None = None, batch: int = 2) -> Tensor:
    """Run ``enc`` on noise and check the declared hop/size against what it returns."""
    for attr in ("hop", "latent_size"):
        _expect(isinstance(getattr(enc, attr, None), int) and getattr(enc, attr) > 0,
                f"{type(enc).__name__}.{attr} must be a positive int")
    t = num_samples or enc.hop * 7 + 3  # not a multiple of hop: padding must be handled
    x = torch.rand(batch, 1, t) * 1.8 - 0.9
    with torch.no_grad():
        z = enc(x)
        levels = enc.encode_levels(x)
    _expect(z.shape == (batch, enc.latent_size, enc.num_frames(t)),
            f"{type(enc).__name__} returned {tuple(z.shape)}, expected {(batch, enc.latent_size, enc.num_frames(t))}")
    _expect(len(levels) == len(enc.level_hops) == len(enc.level_sizes), "levels, level_hops, level_sizes differ")
    for lv, hop, size in zip(levels, enc.level_hops, enc.level_sizes):
        _expect(lv.shape == (batch, size, math.ceil(t / hop)), f"level of hop {hop} has shape {tuple(lv.shape)}")
    _expect(bool(torch.isfinite(z).all()), "encoder output is not finite")
    return z


def check_decoder(dec: Decoder, length: int = 5, batch: int = 2) -> Tensor:
    z = torch.randn(batch, dec.latent_size, length)
    with torch.no_grad():
        y = dec(z)
    _expect(y.shape == (batch, dec.out_channels, length * dec.hop),
            f"{type(dec).__name__} returned {tuple(y.shape)}, expected {(batch, dec.out_channels, length * dec.hop)}")
    _expect(bool(torch.isfinite(y).all()), "decoder output is not finite")
    return y


def _positive_int(obj, attr: str) -> None:
    v = getattr(obj, attr, None)
    _expect(isinstance(v, int) and not isinstance(v, bool) and v > 0,
            f"{type(obj).__name__}.{attr} must be a positive int (declare it in __init__), got {v!r}")


def _scored_loss(prior: Prior, x: Tensor, mask: Tensor) -> Tensor:
    with torch.random.fork_rng():  # the same noise for every call: only the inputs differ
        torch.manual_seed(0)
        logs = prior.training_loss(x, mask)
    name = type(prior).__name__
    _expect(isinstance(logs, dict) and isinstance(logs.get("loss"), Tensor),
            f"{name}.training_loss must return a dict with a tensor 'loss', got {type(logs).__name__}")
    loss = logs["loss"]
    _expect(loss.dim() == 0, f"{name}.training_loss()['loss'] must be a scalar, got shape {tuple(loss.shape)}")
    _expect(bool(torch.isfinite(loss.detach())), f"{name}.training_loss()['loss'] is {float(loss.detach())}")
    return loss


def check_gradients(module: nn.Module, loss: Tensor, what: str) -> None:
    """``loss.backward()`` must reach the module's parameters with finite gradients (what training needs)."""
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not params:
        return  # nothing to train (a fixed component)
    _expect(loss.requires_grad, f"{what} does not depend on {type(module).__name__}'s parameters (no gradient): "
            "compute it with differentiable torch operations, without torch.no_grad(), .detach(), .item() or numpy")
    module.zero_grad(set_to_none=True)
    loss.backward()
    reached = [n for n, p in params if p.grad is not None]
    _expect(bool(reached), f"no parameter of {type(module).__name__} receives a gradient from {what}")
    # every trainable parameter, not just some: a .detach()ed std would otherwise train silently half-frozen
    missed = [n for n, p in params if p.grad is None]
    _expect(not missed, f"parameter{'s' if len(missed) > 1 else ''} {', '.join(missed[:5])}"
            f"{' ...' if len(missed) > 5 else ''} of {type(module).__name__} receive{'' if len(missed) > 1 else 's'} "
            f"no gradient from {what} (detached, or unused): compute the loss from them without .detach() or "
            f"torch.no_grad(), or declare them frozen with requires_grad_(False)")
    bad = [n for n, p in params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    _expect(not bad, f"gradients of {', '.join(bad)} are not finite")
    module.zero_grad(set_to_none=True)


def check_prior(prior: Prior, length: int = 6, batch: int = 3) -> PriorOutput | None:
    """What ``train-prior`` and ``sample`` rely on: ``latent_size``; ``log_prob`` shapes, frame counts and masked
    frames excluded (likelihood priors); a finite scalar ``training_loss`` whose gradient reaches the parameters
    and ignores masked frames; ``sample`` shape and finiteness. Returns the ``PriorOutput`` (None without a
    likelihood)."""
    _positive_int(prior, "latent_size")
    name = type(prior).__name__
    x = torch.randn(batch, prior.latent_size, length)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, length // 2:] = False
    x2 = x.clone()  # the same sequences with other values in the padding
    x2[0, :, length // 2:] = 100.0
    out = None
    if getattr(prior, "has_likelihood", True):
        with torch.random.fork_rng():  # the same noise for both scores: only the masked values differ
            torch.manual_seed(0)
            out = prior.log_prob(x, mask)
        _expect(isinstance(out, PriorOutput), f"{name}.log_prob must return a PriorOutput, got {type(out).__name__}")
        _expect(out.log_prob.shape == (batch,), f"{name}.log_prob must be (B,), got {tuple(out.log_prob.shape)}")
        _expect(out.frames.tolist() == mask.sum(1).tolist(), f"{name}.log_prob: frames must count the unmasked frames")
        for k, v in out.terms.items():
            _expect(v.shape == (batch,), f"term {k} must be (B,), got {tuple(v.shape)}")
        _expect(bool(torch.isfinite(out.log_prob).all()), f"{name}.log_prob is not finite")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            out2 = prior.log_prob(x2, mask)
        _expect(torch.allclose(out.log_prob, out2.log_prob, atol=1e-4), f"masked frames changed {name}.log_prob (padding must be excluded)")
    loss = _scored_loss(prior, x, mask)
    _expect(torch.allclose(loss, _scored_loss(prior, x2, mask), atol=1e-4), f"masked frames changed {name}.training_loss (padding must be excluded)")
    check_gradients(prior, loss, f"{name}.training_loss()['loss']")
    with torch.no_grad():
        s = prior.sample(2, length)
    _expect(isinstance(s, Tensor) and s.shape == (2, prior.latent_size, length),
            f"{name}.sample(2, {length}) returned shape {tuple(getattr(s, 'shape', ()))}, "
            f"expected {(2, prior.latent_size, length)}")
    _expect(bool(torch.isfinite(s).all()), f"{name}.sample: samples are not finite")
    return out


def _built(factory_or_obj):
    """A component from its registered factory (built with its defaults, as gin would) or the component itself."""
    return factory_or_obj() if isinstance(factory_or_obj, type) or inspect.isfunction(factory_or_obj) else factory_or_obj


def check_schedule(schedule) -> Tensor:
    """A noise schedule (``register_schedules``): the registered factory builds a schedule object (gin
    ``@schedules.<name>()``); calling that object returns the betas of the training steps, a float64 1-D tensor with
    every beta strictly in (0, 1) and alpha-bar = prod(1 - beta) above zero; the same betas on every call."""
    from audiogen.errors import ConfigError

    def call(fn):  # out-of-range betas from validate_betas are a broken contract here, not a user's setting
        try:
            return fn()
        except ConfigError as exc:
            raise ContractError(f"{getattr(fn, '__name__', None) or type(fn).__name__}() with its defaults: "
                                f"{str(exc).splitlines()[0]}") from None

    sched = call(schedule) if isinstance(schedule, type) else schedule
    _expect(callable(sched), f"{type(sched).__name__} is not callable: calling the schedule must return the betas")
    betas = call(sched)
    if callable(betas) and not isinstance(betas, Tensor):  # given the registered factory: it built the schedule
        sched, betas = betas, call(betas)
    name = type(sched).__name__
    _expect(isinstance(betas, Tensor), f"{name}() must return a torch tensor of betas, got {type(betas).__name__}")
    _expect(betas.dtype == torch.float64, f"{name}() must return float64 betas (alpha-bar is a long product), "
            f"got {betas.dtype}")
    _expect(betas.ndim == 1 and betas.numel() > 0, f"{name}() must return a non-empty 1-D tensor, got shape "
            f"{tuple(betas.shape)}")
    _expect(bool(((betas > 0) & (betas < 1)).all()), f"{name}(): every beta must be strictly between 0 and 1, got "
            f"min {float(betas.min())}, max {float(betas.max())}")
    _expect(float(torch.cumprod(1 - betas, 0)[-1]) > 0, f"{name}(): alpha-bar underflows to 0 (fewer or smaller betas)")
    _expect(torch.equal(betas, call(sched)), f"{name}() returned different betas on a second call")
    return betas


def check_distribution(dist, batch: int = 2, length: int = 4) -> Tensor:
    """An output distribution (``register_distributions``): ``num_params``; ``log_prob(params (B, P, T), target
    (B, 1, T)) -> (B, 1, T)`` finite, differentiable in ``params`` (the decoder trains through it); ``sample`` and
    ``mean`` (B, 1, T) finite; discrete distributions on a coding's grid (``coding`` attribute, ``is_discrete``) give
    masses that sum to one over the grid, binary ones (``is_binary``) over {0, 1}. Returns the log-probabilities."""
    dist = _built(dist)
    name = type(dist).__name__
    _positive_int(dist, "num_params")
    coding = getattr(dist, "coding", None)
    if getattr(dist, "is_binary", False):
        support = torch.tensor([0.0, 1.0])
    elif coding is not None and getattr(dist, "is_discrete", True):
        support = coding.grid()
    else:
        support = None
    params = torch.randn(batch, dist.num_params, length, requires_grad=True)
    target = (support[torch.randint(len(support), (batch, 1, length))] if support is not None
              else torch.rand(batch, 1, length) * 2 - 1)
    lp = dist.log_prob(params, target)
    _expect(isinstance(lp, Tensor) and lp.shape == (batch, 1, length),
            f"{name}.log_prob returned shape {tuple(getattr(lp, 'shape', ()))}, expected {(batch, 1, length)}")
    _expect(bool(torch.isfinite(lp).all()), f"{name}.log_prob is not finite")
    _expect(lp.requires_grad, f"{name}.log_prob is not differentiable in params: the decoder cannot train through it")
    lp.sum().backward()
    _expect(params.grad is not None and bool(torch.isfinite(params.grad).all()), f"{name}: gradients are not finite")
    with torch.no_grad():
        for method in ("sample", "mean"):
            if method == "mean" and not hasattr(dist, "mean"):
                continue
            y = getattr(dist, method)(params)
            _expect(y.shape == (batch, 1, length), f"{name}.{method} returned {tuple(y.shape)}, expected "
                    f"{(batch, 1, length)}")
            _expect(bool(torch.isfinite(y).all()), f"{name}.{method} is not finite")
        if support is not None:  # every target value scored at once: the masses must sum to one
            k = len(support)
            p = params[:1].detach().expand(k, -1, -1)
            every = dist.log_prob(p, support[:, None, None].expand(k, 1, length))
            total = torch.logsumexp(every.double(), 0).exp()
            _expect(torch.allclose(total, torch.ones_like(total), atol=1e-3),
                    f"{name}: probability masses over the {k} possible targets sum to {total.flatten().tolist()}, "
                    "not 1")
    return lp


def check_coding(coding) -> None:
    """An input coding (``register_codings``): ``bits``, ``num_bins = 2**bits``; ``quantize`` maps waveforms in
    [-1, 1] (and values outside, clipped) to long bins in [0, num_bins); ``dequantize`` gives ascending levels in
    [-1, 1] that quantize back to their own bin; ``to_model``/``from_model`` round-trip on the shared model grid;
    shapes are preserved. Subclass ``audiogen.audio.coding.InputCoding`` and implement ``_quantize64`` and
    ``_dequantize64``."""
    coding = _built(coding)
    name = type(coding).__name__
    _positive_int(coding, "bits")
    _expect(coding.num_bins == 2 ** coding.bits, f"{name}.num_bins must be 2**bits")
    k = torch.arange(coding.num_bins)
    levels = coding.dequantize(k, dtype=torch.float64)
    _expect(levels.shape == k.shape, f"{name}.dequantize changed the shape")
    _expect(bool((levels >= -1).all() and (levels <= 1).all()), f"{name}.dequantize leaves [-1, 1]")
    _expect(bool((levels[1:] > levels[:-1]).all()), f"{name}.dequantize must be strictly increasing in the bin")
    back = coding.quantize(levels)
    _expect(back.dtype == torch.long and torch.equal(back, k), f"{name}: quantize(dequantize(k)) != k for bins "
            f"{(back != k).nonzero().flatten()[:5].tolist()}")
    x = torch.tensor([[-3.0, -1.0, -0.3, 0.0, 0.01, 1.0, 5.0]])
    q = coding.quantize(x)
    _expect(q.shape == x.shape and bool((q >= 0).all() and (q < coding.num_bins).all()),
            f"{name}.quantize must return bins in [0, {coding.num_bins}) of the input's shape")
    _expect(torch.equal(coding.from_model(coding.to_model(k)), k), f"{name}: from_model(to_model(k)) != k")
    _expect(coding.encode(x).shape == x.shape and coding.decode(coding.encode(x)).shape == x.shape,
            f"{name}.encode/decode must keep the shape")


def _no_required_args(fn) -> bool:
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(fn).parameters.values())


def check_anneal(schedule) -> list[float]:
    """An annealing schedule (``register_anneal``, gin ``anneal.<name>``): the registered factory builds, with its
    defaults as gin would, a callable ``step -> value`` (``elbo.beta``, ``elbo.free_nats``) giving a finite real
    number for every step >= 0, the same on every call. Returns the values at steps 0, 1, 10, 1000 and 10**6."""
    sched = schedule
    if isinstance(sched, type) or (inspect.isfunction(sched) and _no_required_args(sched)):
        sched = sched()  # the factory: build the schedule
    name = getattr(sched, "__name__", None) or type(sched).__name__
    _expect(callable(sched), f"{name} is not callable: an annealing schedule is called with the training step")
    steps = (0, 1, 10, 1000, 10 ** 6)
    values = []
    for step in steps:
        v = sched(step)
        _expect(isinstance(v, (int, float)) and not isinstance(v, bool),
                f"{name}({step}) must return a real number, got {type(v).__name__}")
        _expect(math.isfinite(v), f"{name}({step}) is not finite: {v}")
        values.append(float(v))
    _expect([float(sched(s)) for s in steps] == values, f"{name} returned other values on a second call")
    return values


OBJECTIVE_FORMS = ("reconstruction", "elbo", "contrastive")


def objective_form(objective) -> str:
    """Which call a pipeline makes of ``objective``: ``contrastive`` when ``objective.contrastive`` is true (an
    encoder pretrained alone), ``elbo`` when its call takes a ``step`` (temporal VAEs), else ``reconstruction``."""
    if getattr(objective, "contrastive", False):
        return "contrastive"
    call = objective.forward if isinstance(objective, nn.Module) else objective
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return "reconstruction"
    return "elbo" if "step" in params else "reconstruction"


def _loss_of(logs, name: str) -> Tensor:
    _expect(isinstance(logs, dict) and "loss" in logs, f"{name} must return a dict of logs holding 'loss', got "
            f"{type(logs).__name__}" + (f" with keys {sorted(logs)}" if isinstance(logs, dict) else ""))
    loss = logs["loss"]
    _expect(isinstance(loss, Tensor) and loss.ndim == 0, f"{name}: logs['loss'] must be a scalar tensor")
    _expect(bool(torch.isfinite(loss)), f"{name}: logs['loss'] is not finite ({float(loss.detach())})")
    _expect(loss.requires_grad, f"{name}: logs['loss'] does not depend on its inputs (no gradient)")
    for key, value in logs.items():
        _expect(isinstance(value, Tensor) and value.numel() == 1, f"{name}: logs['{key}'] must be a one-element "
                f"tensor (it is logged), got {type(value).__name__}")
    return loss


def check_objective(objective, form: str | None = None, encoder: Encoder | None = None) -> Tensor:
    """A training objective (``register_objectives``), built with its defaults when given its factory. ``form``
    (default: ``objective_form``) is the call the pipeline makes:

    - ``reconstruction`` (autoencoders): ``objective(recon, target, mask=None) -> logs`` on audio (B, 1, T), mask
      (B, T) bool; padded samples (mask False) must not change the loss;
    - ``elbo`` (temporal VAEs): ``objective(out, step) -> logs`` with ``out`` as ``Pipeline.score`` gives it:
      ``rec`` (B,), ``kl`` list of (B, D_l, L_l) masked, ``level_masks``, ``samples`` (B,), ``level_strides``;
    - ``contrastive`` (``contrastive = True``, an encoder pretrained alone): ``check_encoder(encoder)`` and
      ``objective(encoder, audio, frame_mask) -> logs``; run only when ``encoder`` is given.

    ``logs`` is a dict of one-element tensors; ``logs["loss"]``, the scalar trained on, is finite and its gradient
    reaches the inputs. Returns the loss."""
    obj = _built(objective)
    name = type(obj).__name__
    form = form or objective_form(obj)
    _expect(form in OBJECTIVE_FORMS, f"form must be one of {OBJECTIVE_FORMS}, got {form!r}")
    _expect(callable(obj), f"{name} is not callable")
    gen = torch.Generator().manual_seed(0)
    if form == "reconstruction":
        T = 4096
        target = 0.3 * torch.randn(2, 1, T, generator=gen)
        recon = (0.3 * torch.randn(2, 1, T, generator=gen)).requires_grad_(True)
        mask = torch.ones(2, T, dtype=torch.bool)
        mask[1, T // 2:] = False
        _loss_of(obj(recon.detach().requires_grad_(True), target), f"{name}(recon, target)")
        loss = _loss_of(obj(recon, target, mask), f"{name}(recon, target, mask)")
        loss.backward()
        _expect(recon.grad is not None and bool(torch.isfinite(recon.grad).all()) and bool(recon.grad.abs().sum() > 0),
                f"{name}: the loss has no finite gradient in recon")
        changed = recon.detach().clone()
        changed[1, :, T // 2:] += 1.0
        with torch.no_grad():
            other = obj(changed, target, mask)["loss"]
        _expect(torch.allclose(other, loss.detach(), rtol=1e-5, atol=1e-6), f"{name}: padded samples (mask False) "
                f"change the loss ({float(loss.detach())} -> {float(other)}): padding must cost nothing")
        return loss.detach()
    if form == "elbo":
        B, D, L = 2, 3, 5
        mask = torch.ones(B, L, dtype=torch.bool)
        mask[1, 3:] = False
        rec = (-10 * torch.rand(B, generator=gen)).requires_grad_(True)
        kl = (torch.rand(B, D, L, generator=gen) * mask[:, None, :]).requires_grad_(True)
        out = {"rec": rec, "kl": [kl], "level_masks": [mask], "samples": mask.sum(1).float() * 16,
               "level_strides": [1], "posterior_mean": [torch.zeros(B, D, L)]}
        for step in (0, 10 ** 6):
            loss = _loss_of(obj(out, step), f"{name}(out, step={step})")
        loss.backward()
        for t, what in ((rec, "out['rec']"), (kl, "out['kl']")):
            _expect(t.grad is not None and bool(torch.isfinite(t.grad).all()),
                    f"{name}: the loss has no finite gradient in {what}")
        return loss.detach()
    _expect(callable(getattr(obj, "check_encoder", None)), f"{name} is contrastive but has no check_encoder(encoder)")
    if encoder is None:
        return torch.zeros(())
    obj.check_encoder(encoder)
    frames = 16
    audio = 0.3 * torch.randn(2, 1, frames * encoder.hop, generator=gen)
    mask = torch.ones(2, frames, dtype=torch.bool)
    mask[1, frames // 2:] = False
    loss = _loss_of(obj(encoder, audio, mask), f"{name}(encoder, audio, frame_mask)")
    check_gradients(encoder, loss, f"{name} through {type(encoder).__name__}")
    return loss.detach()
