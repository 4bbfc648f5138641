"""Exported RAVE models (acids-ircam/RAVE ``rave export``, TorchScript ``.ts``) read with torch alone.

Everything is read from the model file: ``sr`` (sample rate) and the nn~ method buffers
``encode_params = [in_channels, in_ratio, latent_size, hop]`` and ``decode_params``. No acids-rave, nn_tilde or
cached_conv import is needed: ``torch.jit.load`` rebuilds the scripted module.

What an export does, and what this module adds:

- ``encode`` samples the posterior (``encoder.reparametrize``: mean + std * noise), subtracts ``latent_mean``,
  projects on the PCA rows ``latent_pca`` and keeps the first ``latent_size`` dimensions. When the export exposes
  its submodules (``pqmf``, ``encoder`` with ``reparametrize``, the PCA buffers), :meth:`RaveModel.encode_mean`
  takes the same path with the noise left out: the posterior mean, projected. It is used only after
  :func:`_check_mean_path` has shown, on a probe signal, that the same path with the model's own sampling reproduces
  ``encode`` exactly (same seed, same noise) and that the sampling is centred on the half taken as the mean.
- ``decode`` appends ``full_latent_size - latent_size`` dimensions of N(0, 1) noise (the dimensions dropped by the
  PCA truncation), projects back, and its generator adds filtered noise: decoding is random unless seeded.
- Context needed on each side of a chunk (so chunked coding equals whole-signal coding) is measured once per model
  by perturbing one input position and seeing which outputs change.
- Streaming (cached-convolution) exports keep state between calls: it is reset before every call, and such
  models are coded whole.
- Causal exports' outputs lag their input (about one hop): :meth:`RaveModel.latency` measures the lag with
  impulses when first asked; the decoder compensates it by default (``decoders.rave.compensate_latency``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from audiogen.contracts import chunk_spans
from audiogen.errors import ConfigError

log = logging.getLogger("audiogen")

EXPORT_FIX = "pass the .ts file written by RAVE's export (`rave export --run RUN`, scripts/export.py)"
UNSET_FIX = "bind the model file, e.g. --bind \"RAVE_MODEL='/path/to/model.ts'\" with pipelines/rave_bridge.gin"
# cached_conv modules that carry state from one call to the next in streaming exports, and their state buffers.
_STATEFUL = {"CachedPadding1d": ("pad",), "CachedConv1d": (), "CachedConvTranspose1d": ("cache",)}


@contextlib.contextmanager
def seeded(seed: int | None, like: Tensor | None = None):
    """Run the block with the global generator seeded (and restored afterwards); no-op for ``seed=None``."""
    if seed is None:
        yield
        return
    devices = [like.device.index or 0] if like is not None and like.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


@dataclass(eq=False)
class RaveModel:
    """One loaded export and what was learnt about it. Shared by the encoder and decoder of a pipeline."""

    path: Path
    module: torch.jit.ScriptModule
    sample_rate: int
    latent_size: int
    hop: int
    in_channels: int
    out_channels: int
    full_latent_size: int | None
    export_class: str
    streaming: bool
    mean_error: str | None = None  # why the posterior mean cannot be computed (None: it can)
    _cache: dict = field(default_factory=dict)  # measured contexts, file hash

    # ------------------------------------------------------------------------------------------------ encoding
    @property
    def mean_available(self) -> bool:
        return self.mean_error is None

    def _prepare(self, audio: Tensor) -> Tensor:
        """(B, 1, T) mono audio -> the (B, in_channels, T) the export takes (mono copied to every channel)."""
        if self.in_channels != audio.shape[1]:
            audio = audio.mean(1, keepdim=True).expand(-1, self.in_channels, -1)
        return audio

    def _full_posterior(self, audio: Tensor) -> Tensor:
        """Encoder output before sampling: (B, 2 * full_latent_size, frames) = [mean; scale]."""
        m = self.module
        x = self._prepare(audio)
        if _pqmf_input(m):
            b = x.shape[0]
            h = m.pqmf(x.reshape(-1, 1, x.shape[-1]))
            x = h.reshape(b, -1, h.shape[-1])
        return m.encoder(x)

    def _project(self, z: Tensor) -> Tensor:
        m = self.module
        return F.conv1d(z - m.latent_mean.unsqueeze(-1), m.latent_pca[: self.latent_size].unsqueeze(-1))

    def encode_mean(self, audio: Tensor) -> Tensor:
        """Posterior mean, PCA-projected: ``encode`` without its noise."""
        self.reset()
        mean = self._full_posterior(audio).chunk(2, 1)[0]
        return self._project(mean)

    def encode_sample(self, audio: Tensor) -> Tensor:
        """The export's own ``encode`` (a posterior sample for variational models)."""
        self.reset()
        return self.module.encode(self._prepare(audio))

    def decode(self, latents: Tensor) -> Tensor:
        """The export's ``decode``, mixed down to mono: (B, latent_size, L) -> (B, 1, >= L * hop)."""
        self.reset()
        y = self.module.decode(latents)
        return y.mean(1, keepdim=True) if y.shape[1] != 1 else y

    def reset(self) -> None:
        """Zero the state of streaming exports, so each call starts afresh (no-op for the others)."""
        if self.streaming:
            with torch.no_grad():
                for mod in self.module.modules():
                    for name in _STATEFUL.get(mod.original_name, ()):
                        buf = getattr(mod, name, None)
                        if isinstance(buf, Tensor):
                            buf.zero_()

    # --------------------------------------------------------------------------------------------- context
    def encoder_context(self, mean: bool) -> int | None:
        """Samples of context a chunk needs on each side for chunked encoding to equal whole encoding."""
        if self.streaming:
            return None
        key = "encoder_mean" if mean else "encoder_sample"
        if key not in self._cache:
            fn = self.encode_mean if mean else self.encode_sample
            self._cache[key] = _encoder_context(fn, self.hop, self.in_channels)
        return self._cache[key]

    def decoder_context(self) -> int | None:
        """Latent frames of context a chunk needs on each side for chunked decoding to equal whole decoding."""
        if self.streaming:
            return None
        if "decoder" not in self._cache:
            self._cache["decoder"] = _decoder_context(self.decode, self.hop, self.latent_size)
        return self._cache["decoder"]

    def _encode_fn(self):
        return self.encode_mean if self.mean_available else self.encode_sample

    def causal(self) -> bool:
        """Whether no latent frame depends on input after its own hop (cached_conv's causal exports): checked by
        changing the second half of a probe signal and seeing every frame of the first half unchanged."""
        if "causal" not in self._cache:
            g = torch.Generator().manual_seed(0)
            n, hop = 32, self.hop
            x = torch.randn(1, 1, n * hop, generator=g) * 0.1
            y = x.clone()
            y[..., n // 2 * hop:] += torch.randn(1, 1, n // 2 * hop, generator=g) * 0.1
            with torch.no_grad(), seeded(0):
                a = self._encode_fn()(x)
            with torch.no_grad(), seeded(0):
                b = self._encode_fn()(y)
            self._cache["causal"] = bool(torch.equal(a[..., : n // 2], b[..., : n // 2]))
        return self._cache["causal"]

    def latency(self) -> int:
        """Samples by which decode(encode(x)) lags x: 0 for non-causal exports (they look ahead as far as back);
        for causal ones (about a hop or more) measured once with impulses: where the response, taken against that
        of silence with the same noise (so the model's own noise and offset cancel), peaks; the median over impulses
        at four phases within a hop."""
        if "latency" not in self._cache:
            lags, hop = [], self.hop
            if self.causal():
                with torch.no_grad():
                    for phase in (0, hop // 4, hop // 2, 3 * hop // 4):
                        p = 16 * hop + phase
                        x = torch.zeros(1, 1, 48 * hop)
                        y = x.clone()
                        y[..., p] = 0.5
                        with seeded(0):
                            a = self.decode(self._encode_fn()(x))
                        with seeded(0):
                            b = self.decode(self._encode_fn()(y))
                        # from two hops before the impulse: a trained model puts it back about where it was
                        response = (b - a)[0, :, p - 2 * hop: p + 8 * hop].abs().sum(0)
                        lags.append(int(response.argmax()) - 2 * hop if float(response.max()) > 0 else 0)
            self._cache["latency"] = max(0, sorted(lags)[len(lags) // 2]) if lags else 0
        return self._cache["latency"]

    def describe(self) -> dict:
        if "sha256" not in self._cache:
            from audiogen.artifacts import sha256_file

            self._cache["sha256"] = sha256_file(self.path)
        return {"model_path": str(self.path), "model_sha256": self._cache["sha256"],
                "export_class": self.export_class, "sample_rate": self.sample_rate,
                "hop": self.hop, "latent_size": self.latent_size, "full_latent_size": self.full_latent_size,
                "streaming": self.streaming, "causal": self.causal(), "latency": self.latency()}


# ------------------------------------------------------------------------------------------------------ loading
_CACHE: dict[tuple[str, int, int], RaveModel] = {}
# While a decoder is built from a config stored in a latent dataset: the one model file its record names (its
# sha256 checked), and who says so. Another file is refused before torch.jit.load, which runs what it loads.
_ONLY: contextvars.ContextVar[tuple[Path | None, str] | None] = contextvars.ContextVar("audiogen_only_model",
                                                                                      default=None)


@contextlib.contextmanager
def only_model_file(path: Path | None, source: str):
    """Within the block, ``load_rave`` loads ``path`` only (nothing when None): a stored config names the file."""
    token = _ONLY.set((Path(path).resolve() if path is not None else None, source))
    try:
        yield
    finally:
        _ONLY.reset(token)


def load_rave(path) -> RaveModel:
    """Load an exported RAVE model (cached per file and modification time), or raise a ConfigError saying why not."""
    if path is None or str(path).strip() == "":
        raise ConfigError("no RAVE model file given (model_path is not set)", fix=UNSET_FIX)
    p = Path(path).expanduser()
    if not p.exists():
        where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
        raise ConfigError(f"RAVE model file {p} does not exist{where}", fix=EXPORT_FIX)
    if not p.is_file():
        raise ConfigError(f"RAVE model path {p} is not a file", fix=EXPORT_FIX)
    only = _ONLY.get()
    if only is not None and only[0] != p.resolve():
        recorded = f"records model file {only[0]}" if only[0] is not None else "records no model file (sha256)"
        raise ConfigError(f"{only[1]} {recorded} but its operative config builds a decoder from {p}",
                          fix="pass --gin/--bind naming the model file that encoded them, or re-encode")
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE[key] = _load(p)
    return _CACHE[key]


def _load(p: Path) -> RaveModel:
    try:
        with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; RAVE exports are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError/pickle errors depending on what the file is
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"RAVE model file {p} is not a TorchScript file (torch.jit.load: {first})",
                          fix=EXPORT_FIX + ", not a training checkpoint (.ckpt) or another file") from None
    kind = getattr(module, "original_name", type(module).__name__)
    missing = [f"method {n}()" for n in ("encode", "decode") if not _has_method(module, n)]
    missing += [f"buffer {n}" for n in ("encode_params", "decode_params") if not isinstance(_attr(module, n), Tensor)]
    missing += ["attribute sr (sample rate)"] if _attr(module, "sr") is None else []
    if missing:
        raise ConfigError(f"{p} is TorchScript ({kind}) but not a RAVE export: it lacks {', '.join(missing)}",
                          fix=EXPORT_FIX)
    enc = [int(v) for v in module.encode_params.flatten().tolist()]
    dec = [int(v) for v in module.decode_params.flatten().tolist()]
    if len(enc) != 4 or len(dec) != 4 or min(enc + dec) < 1 or dec[:2] != enc[2:] or enc[3] % enc[1]:
        raise ConfigError(f"{p}: inconsistent nn~ method parameters encode_params={enc} decode_params={dec} "
                          "(expected [in_channels, in_ratio, latent_size, hop] and [latent_size, hop, "
                          "out_channels, 1])", fix=EXPORT_FIX)
    module.eval()
    for prm in module.parameters():
        prm.requires_grad_(False)
    pca = _attr(module, "latent_pca")
    full = int(pca.shape[0]) if isinstance(pca, Tensor) and pca.dim() == 2 else None
    model = RaveModel(path=p.resolve(), module=module, sample_rate=int(module.sr), latent_size=enc[2],
                      hop=enc[3] // enc[1], in_channels=enc[0], out_channels=dec[2], full_latent_size=full,
                      export_class=kind,
                      streaming=any(m.original_name in _STATEFUL for m in module.modules()))
    model.mean_error = _check_mean_path(model)
    if model.streaming:
        log.warning("%s is a streaming export: its state is reset before every call and files are coded whole "
                    "(export without --streaming for batch work)", p)
    return model


def _has_method(module, name: str) -> bool:
    try:
        return callable(getattr(module, name))
    except (AttributeError, RuntimeError):
        return False


def _attr(module, name: str):
    try:
        return getattr(module, name)
    except (AttributeError, RuntimeError):
        return None


def _pqmf_input(m) -> bool:
    """Whether ``encode`` runs the PQMF analysis first (RAVE 2.x: ``input_mode``; older exports: a pqmf)."""
    mode = _attr(m, "input_mode")
    if mode is not None:
        return mode == "pqmf"
    return _attr(m, "pqmf") is not None


def _check_mean_path(model: RaveModel) -> str | None:
    """None when ``encode_mean`` is the noise-free ``encode`` of this export, else the reason it is not."""
    m = model.module
    if _attr(m, "encoder") is None:
        return "the export does not expose its encoder"
    if not _has_method(m.encoder, "reparametrize"):
        return "the encoder has no reparametrize() (not a variational export: its encode is already deterministic)"
    need = [n for n in ("latent_pca", "latent_mean") if _attr(m, n) is None]
    if need:
        return f"the export does not expose {', '.join(need)}"
    if _pqmf_input(m) and _attr(m, "pqmf") is None:
        return "the export takes PQMF input but does not expose its pqmf"
    if _attr(m, "input_mode") not in (None, "pqmf", "raw"):
        return f"input_mode {m.input_mode!r} is not supported"
    if model.full_latent_size is None or model.full_latent_size < model.latent_size:
        return "latent_pca has an unexpected shape"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 8 * model.hop, generator=g) * 0.1
    try:
        with torch.no_grad():
            with seeded(1234):
                reference = model.encode_sample(x)
            with seeded(1234):
                model.reset()  # as encode_sample did: a streaming export must not replay on its leftover state
                full = model._full_posterior(x)
                replayed = model._project(m.encoder.reparametrize(full)[0])
            with seeded(5678):
                draws = torch.stack([m.encoder.reparametrize(full)[0] for _ in range(64)])
    except Exception as exc:  # noqa: BLE001 - an export whose submodules do not compose as expected
        return f"the submodules do not run as expected ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if full.shape[1] != 2 * model.full_latent_size or reference.shape != replayed.shape:
        return f"unexpected shapes (encoder output {tuple(full.shape)}, encode {tuple(reference.shape)})"
    scale = float(reference.abs().max()) + 1e-6
    if not torch.allclose(reference, replayed, rtol=1e-4, atol=1e-4 * scale):
        return "pqmf -> encoder -> reparametrize -> PCA does not reproduce the export's encode"
    mean = full.chunk(2, 1)[0]
    spread = draws.std(0)
    if not bool(((draws.mean(0) - mean).abs() <= 6 * spread / math.sqrt(len(draws)) + 1e-5).all()):
        return "reparametrize is not centred on the first half of the encoder output"
    return None


# ------------------------------------------------------------------------------------------------------ context
def _changed_span(run: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> tuple[int, int, int] | None:
    """First and last output positions (last axis) where ``run(x)`` and ``run(y)`` differ, with the same noise
    in both runs, and the output length; None when nothing changes."""
    with torch.no_grad(), seeded(0):
        a = run(x)
    with torch.no_grad(), seeded(0):
        b = run(y)
    changed = torch.nonzero((a - b).abs().amax(dim=(0, 1)) > 0).flatten()
    return (int(changed.min()), int(changed.max()), a.shape[-1]) if len(changed) else None


def _encoder_context(encode: Callable[[Tensor], Tensor], hop: int, channels: int, max_frames: int = 4096):
    """Perturb one input sample in the middle of a probe signal; the frames that change give the receptive field.
    Returns samples per side (with one hop of slack for the sample's phase within a frame), or None."""
    g = torch.Generator().manual_seed(0)
    n = 32
    while n <= max_frames:  # double the probe until the change fits inside it
        x = torch.randn(1, channels, n * hop, generator=g) * 0.1
        p = (n // 2) * hop + hop // 2
        y = x.clone()
        y[..., p] += 0.5
        span = _changed_span(encode, x, y)
        if span is None:
            return None
        first, last, frames = span
        if first > 0 and last < frames - 1:
            before = last * hop - p  # a frame reads this far before its first sample
            after = p - (first + 1) * hop + 1  # and this far after its last
            return max(before, after, 0) + hop
        n *= 2
    return None


def _decoder_context(decode: Callable[[Tensor], Tensor], hop: int, latent_size: int, max_frames: int = 4096):
    """Perturb one latent frame (same noise in both runs); the output frames that change give the context in
    latent frames per side (plus one), or None."""
    g = torch.Generator().manual_seed(0)
    n = 32
    while n <= max_frames:
        z = torch.randn(1, latent_size, n, generator=g)
        q = n // 2
        w = z.clone()
        w[..., q] += 1.0
        span = _changed_span(decode, z, w)
        if span is None:
            return None
        first, last = span[0] // hop, span[1] // hop
        if first > 0 and last < n - 1:
            return max(q - first, last - q) + 1
        n *= 2
    return None


# ----------------------------------------------------------------------------------------------------- chunking
def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, step: int, chunk: int | None, context: int | None,
            out_ratio: float) -> Tensor:
    """Apply ``fn`` along the last axis in chunks of ``chunk`` positions (a multiple of ``step``) with ``context``
    positions of real input on each side (rounded up to ``step``), keeping the outputs of each chunk's own span.
    ``out_ratio`` = output positions per input position. Equals ``fn(x)`` when ``context`` covers ``fn``'s reach."""
    n = x.shape[-1]
    if not chunk or context is None:
        return fn(x)
    if n <= max(step, chunk // step * step) + 2 * math.ceil(context / step) * step:
        return fn(x)  # e.g. a span that `audiogen encode` already cut with the same margins
    outs = []
    for s, e, a, b in chunk_spans(n, step, chunk, context):
        y = fn(x[..., s:e])
        outs.append(y[..., round((a - s) * out_ratio): round((b - s) * out_ratio)])
    return torch.cat(outs, dim=-1)
