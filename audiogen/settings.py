"""Run settings that are not components: gin-configurable as ``audio.*``, ``train.*`` and ``encode.*``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gin
from audiogen.errors import ConfigError


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
    if channels not in ("downmix", "error"):
        raise ConfigError(f"audio.channels must be 'downmix' or 'error', got {channels!r}",
                          fix="--bind \"audio.channels='downmix'\"")
    return AudioSettings(int(sample_rate), channels, bool(resample))


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


@gin.configurable("train")
def train_settings(max_steps: int = 2000, batch_size: int = 8, crop_seconds: float = 1.0, lr: float = 1e-3,
                   val_every: int = 200, log_every: int = 10, num_workers: int = 0, seed: int = 0,
                   grad_clip: float | None = 10.0, grad_clip_value: float | None = None,
                   accelerator: str = "auto", threads: int | None = None,
                   max_minutes: float | None = None, devices: int | None = None, num_nodes: int | None = None,
                   strategy: str = "auto") -> TrainSettings:
    """Training loop settings (steps, batch, crops, optimiser, clipping by norm and by value, validation and
    checkpoint interval, CPU threads, and an optional wall-clock budget ``max_minutes``).

    Distributed: ``devices`` processes per node (one per GPU) on ``num_nodes`` nodes; None is 1, or what torchrun or
    SLURM launched. ``batch_size`` is the global batch, shared evenly by all processes. ``strategy`` 'auto' is
    Lightning's 'ddp' when there is more than one process (gloo on CPU, NCCL on GPUs)."""
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size), ("val_every", val_every),
                        ("log_every", log_every)):
        if int(value) < 1:
            raise ConfigError(f"train.{name} must be a positive integer, got {value!r}")
    if float(crop_seconds) <= 0 or float(lr) <= 0:
        raise ConfigError(f"train.crop_seconds and train.lr must be positive, got {crop_seconds!r} and {lr!r}")
    return TrainSettings(int(max_steps), int(batch_size), float(crop_seconds), float(lr), int(val_every),
                         int(log_every), int(num_workers), int(seed), grad_clip, grad_clip_value, accelerator,
                         threads, max_minutes, devices, num_nodes, str(strategy))


@dataclass(frozen=True)
class EncodeSettings:
    shard_mb: float
    chunk_seconds: float
    dtype: str
    devices: int | None = None
    num_nodes: int | None = None
    accelerator: str = "cpu"


@gin.configurable("encode")
def encode_settings(shard_mb: float = 64.0, chunk_seconds: float = 30.0, dtype: str = "float32",
                    devices: int | None = None, num_nodes: int | None = None,
                    accelerator: str = "cpu") -> EncodeSettings:
    """Latent dataset writing: shard size bound, chunk length for long files, storage dtype. ``devices`` x
    ``num_nodes`` processes (None: 1, or what torchrun or SLURM launched) share the shards; ``accelerator`` is
    where each runs the encoder ('cpu', 'gpu', ...)."""
    if dtype not in ("float32", "float16"):
        raise ConfigError(f"encode.dtype must be 'float32' or 'float16', got {dtype!r}",
                          fix="--bind \"encode.dtype='float32'\"")
    return EncodeSettings(float(shard_mb), float(chunk_seconds), dtype, devices, num_nodes, str(accelerator))


@dataclass(frozen=True)
class PriorSettings:
    crop_frames: int
    normalize: bool


@gin.configurable("train_prior")
def prior_settings(crop_frames: int = 128, normalize: bool = True) -> PriorSettings:
    """Prior training on sequences: random crops of ``crop_frames`` frames; ``normalize`` trains the prior on
    (x - mean) / std with the dataset's per-dimension statistics and inverts it on samples (the default: a prior
    that sees latents spanning +-4 while generating in +-1 decodes to near silence)."""
    if int(crop_frames) < 1:
        raise ConfigError(f"train_prior.crop_frames must be a positive integer, got {crop_frames!r}")
    return PriorSettings(int(crop_frames), bool(normalize))


@dataclass(frozen=True)
class ListenSettings:
    enabled: bool
    items: int
    seconds: float
    seed: int


@gin.configurable("listen")
def listen_settings(enabled: bool = True, items: int = 4, seconds: float = 3.0, seed: int = 0) -> ListenSettings:
    """What training logs to TensorBoard to listen to: ``items`` items of at most ``seconds`` seconds each."""
    if int(items) < 1 or not float(seconds) > 0:
        raise ConfigError(f"listen.items = {items!r} and listen.seconds = {seconds!r} must be positive",
                          fix="e.g. listen.items = 4, listen.seconds = 3.0 (or listen.enabled = False)")
    return ListenSettings(bool(enabled), int(items), float(seconds), int(seed))
