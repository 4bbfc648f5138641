"""Run settings that are not components: gin-configurable as ``audio.*``, ``train.*`` and ``encode.*``."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import asdict, dataclass, fields

import gin

from audiogen.errors import ConfigError

_EXAMPLES = {int: 1, float: 1.0, str: "auto"}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a quoted string", bool: "True or False"}


def _fits(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def checked(cls, scope: str, fn, values: dict):
    """``cls(**values)`` after checking each value against the field's type: the one place where run settings
    bound in gin are checked, so that ``train.max_steps='abc'`` is a ConfigError naming the gin name, the value
    and its type, and the fix, not a ValueError from int() deep in a run."""
    hints = typing.get_type_hints(cls)
    defaults = inspect.signature(fn).parameters
    for f in fields(cls):
        value, hint = values[f.name], hints[f.name]
        kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        if any(k is type(None) and value is None or k is not type(None) and _fits(value, k) for k in kinds):
            if float in kinds and isinstance(value, int):
                values = {**values, f.name: float(value)}  # lr=1 is 1.0: one type per field in every artifact
            continue
        wanted = " or ".join("None" if k is type(None) else _TYPE_NAMES.get(k, k.__name__) for k in kinds)
        example = defaults[f.name].default
        if example is None:  # an optional setting: show a value of its type
            example = next((_EXAMPLES[k] for k in kinds if k in _EXAMPLES), None)
        raise ConfigError(f"{scope}.{f.name} must be {wanted}, got {value!r} ({type(value).__name__})",
                          fix=f"--bind {scope}.{f.name}={example!r}" + (" (no quotes around numbers)"
                                                                       if isinstance(value, str) else ""))
    return cls(**values)


@dataclass(frozen=True)
class AudioSettings:
    sample_rate: int
    channels: str
    resample: bool

    def as_dict(self) -> dict:
        return asdict(self)


@gin.configurable("audio")
def audio_settings(sample_rate: int = 16000, channels: str = "downmix", resample: bool = True) -> AudioSettings:
    """How audio is read: target rate, channel policy ('downmix' or 'error'), resample files at other rates."""
    settings = checked(AudioSettings, "audio", audio_settings, locals())
    if channels not in ("downmix", "error"):
        raise ConfigError(f"audio.channels must be 'downmix' or 'error', got {channels!r}",
                          fix="--bind \"audio.channels='downmix'\"")
    if sample_rate <= 0:
        raise ConfigError(f"audio.sample_rate must be a positive integer, got {sample_rate!r}",
                          fix="--bind audio.sample_rate=16000")
    return settings


def audio_settings_for(component, role: str) -> AudioSettings:
    """``audio_settings()`` for running ``component`` (an encoder or decoder): a pretrained component with a fixed
    ``sample_rate`` (e.g. a RAVE model file) sets ``audio.sample_rate`` when no gin file or binding did; a rate
    that differs from the component's is a ConfigError naming the fix."""
    rate = getattr(component, "sample_rate", None)
    if rate and getattr(component, "pretrained", False):
        try:
            gin.query_parameter("audio.sample_rate")
        except ValueError:  # not set: take the model's rate (recorded in the operative config like any binding)
            with gin.unlock_config():
                gin.bind_parameter("audio.sample_rate", int(rate))
    audio = audio_settings()
    if rate and int(rate) != audio.sample_rate:
        raise ConfigError(f"the {role} works at {rate} Hz but audio.sample_rate is {audio.sample_rate}",
                          fix=f"--bind audio.sample_rate={rate} (or drop the gin file or binding that sets "
                              f"{audio.sample_rate}; audio is resampled to the {role}'s rate when read)")
    return audio


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int
    batch_size: int
    crop_seconds: float
    lr: float
    val_every: int
    log_every: int
    num_workers: int
    seed: int
    grad_clip: float | None
    grad_clip_value: float | None
    accelerator: str
    threads: int | None
    max_minutes: float | None
    devices: int | None
    num_nodes: int | None
    strategy: str
    lr_schedule: str = "constant"


LR_SCHEDULES = ("constant", "cosine")


@gin.configurable("train")
def train_settings(max_steps: int = 2000, batch_size: int = 8, crop_seconds: float = 1.0, lr: float = 1e-3,
                   val_every: int = 200, log_every: int = 10, num_workers: int = 0, seed: int = 0,
                   grad_clip: float | None = 10.0, grad_clip_value: float | None = None,
                   accelerator: str = "auto", threads: int | None = None,
                   max_minutes: float | None = None, devices: int | None = None, num_nodes: int | None = None,
                   strategy: str = "auto", lr_schedule: str = "constant") -> TrainSettings:
    """Training loop settings (steps, batch, crops, optimiser, clipping by norm and by value, validation and
    checkpoint interval, CPU threads, and an optional wall-clock budget ``max_minutes``).

    ``lr_schedule``: 'constant', or 'cosine' (from ``lr`` down to a tenth of it at ``max_steps``; a short run then
    ends on small steps instead of on the noise of a large one).

    Distributed: ``devices`` processes per node (one per GPU) on ``num_nodes`` nodes; None is 1, or what torchrun or
    SLURM launched. ``batch_size`` is the global batch, shared evenly by all processes. ``strategy`` 'auto' is
    Lightning's 'ddp' when there is more than one process (gloo on CPU, NCCL on GPUs)."""
    settings = checked(TrainSettings, "train", train_settings, locals())
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size), ("val_every", val_every),
                        ("log_every", log_every)):
        if int(value) < 1:
            raise ConfigError(f"train.{name} must be a positive integer, got {value!r}")
    if float(crop_seconds) <= 0 or float(lr) <= 0:
        raise ConfigError(f"train.crop_seconds and train.lr must be positive, got {crop_seconds!r} and {lr!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"train.lr_schedule must be one of {', '.join(map(repr, LR_SCHEDULES))}, got {lr_schedule!r}",
                          fix="--bind \"train.lr_schedule='cosine'\"")
    return settings


@dataclass(frozen=True)
class EncodeSettings:
    shard_mb: float
    chunk_seconds: float
    dtype: str
    batch_seconds: float | None = None
    devices: int | None = None
    num_nodes: int | None = None
    accelerator: str = "cpu"


@gin.configurable("encode")
def encode_settings(shard_mb: float = 64.0, chunk_seconds: float = 30.0, dtype: str = "float32",
                    batch_seconds: float | None = None, devices: int | None = None, num_nodes: int | None = None,
                    accelerator: str = "cpu") -> EncodeSettings:
    """Latent dataset writing: shard size bound, chunk length for long files (also how much of a file is read at
    once), storage dtype. ``batch_seconds``: audio seconds per forward call (windows of several files batched;
    None: the encoder's own ``batch_seconds``; more suits a GPU). ``devices`` x
    ``num_nodes`` processes (None: 1, or what torchrun or SLURM launched) share the shards; ``accelerator`` is
    where each runs the encoder ('cpu', 'gpu', ...)."""
    settings = checked(EncodeSettings, "encode", encode_settings, locals())
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"encode.dtype must be 'float32' or 'float16', got {dtype!r}",
                          fix="--bind \"encode.dtype='float32'\"")
    if batch_seconds is not None and batch_seconds <= 0:
        raise ConfigError(f"encode.batch_seconds must be positive (or None: the encoder's), got {batch_seconds!r}",
                          fix="--bind encode.batch_seconds=None")
    if shard_mb <= 0 or chunk_seconds <= 0:
        raise ConfigError(f"encode.shard_mb and encode.chunk_seconds must be positive, got {shard_mb!r} and "
                          f"{chunk_seconds!r}", fix="--bind encode.shard_mb=64.0")
    return settings


@dataclass(frozen=True)
class PriorSettings:
    crop_frames: int
    normalize: bool


@gin.configurable("train_prior")
def prior_settings(crop_frames: int = 128, normalize: bool = True) -> PriorSettings:
    """Prior training on sequences: random crops of ``crop_frames`` frames; ``normalize`` trains the prior on
    (x - mean) / std with the dataset's per-dimension statistics and inverts it on samples (the default: a prior
    that sees latents spanning +-4 while generating in +-1 decodes to near silence)."""
    settings = checked(PriorSettings, "train_prior", prior_settings, locals())
    if int(crop_frames) < 1:
        raise ConfigError(f"train_prior.crop_frames must be a positive integer, got {crop_frames!r}")
    return settings


@dataclass(frozen=True)
class ListenSettings:
    enabled: bool
    items: int
    seconds: float
    seed: int


@gin.configurable("listen")
def listen_settings(enabled: bool = True, items: int = 4, seconds: float = 3.0, seed: int = 0) -> ListenSettings:
    """What training logs to TensorBoard to listen to: ``items`` items of at most ``seconds`` seconds each."""
    settings = checked(ListenSettings, "listen", listen_settings, locals())
    if settings.items < 1 or not settings.seconds > 0:
        raise ConfigError(f"listen.items = {items!r} and listen.seconds = {seconds!r} must be positive",
                          fix="e.g. listen.items = 4, listen.seconds = 3.0 (or listen.enabled = False)")
    return settings
