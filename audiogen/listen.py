"""Hear a model while it trains: audio and spectrogram images in the run's TensorBoard log (``listen.*`` in gin).

Every ``train.val_every`` steps (and at the end) rank 0 logs, under ``listen/`` and ``spectrogram/``:
- ``audiogen train``: reconstructions of the first validation files (training files without --valid), the
  originals once, and unconditional samples when the pipeline has a latent model (temporal VAEs);
- ``audiogen train-prior``: prior samples de-normalised and decoded by the dataset's autoencoder.
Bounded (``items`` items of at most ``seconds`` each), seeded (``seed``; the training's random streams are left
as they were, so resumed runs stay exact) and switchable (``listen.enabled = False``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch

from audiogen.settings import ListenSettings, listen_settings

log = logging.getLogger("audiogen")

Items = list[tuple[str, np.ndarray, int]]  # (tag, mono audio, sample rate)


def spectrogram_image(audio: np.ndarray, sample_rate: int, db_range: float = 80.0) -> np.ndarray:
    """(H, W, 3) uint8: log-magnitude spectrogram, low frequencies at the bottom, magma colours."""
    from matplotlib import colormaps

    from audiogen.plots import log_spectrogram

    n_fft = 512 if sample_rate <= 16000 else 1024
    _, _, db = log_spectrogram(audio, sample_rate, n_fft=n_fft, hop=n_fft // 4)
    top = float(db.max())
    norm = np.clip((db - (top - db_range)) / db_range, 0, 1)[::-1]
    return (colormaps["magma"](norm)[..., :3] * 255).astype(np.uint8)


class ListenCallback(L.Callback):
    """Calls ``make_items(module)`` every ``every`` steps (seeded, eval mode, no grad) and logs what it returns."""

    def __init__(self, make_items: Callable[[L.LightningModule], Items], every: int, settings: ListenSettings,
                 logdir: Path):
        self.make_items, self.every, self.settings, self.logdir = make_items, int(every), settings, Path(logdir)
        self._done = -1
        self._stopped = False
        self._events = None  # tensorboardX EventsWriter, opened on the first log

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            log.info("listen to it while it trains: tensorboard --logdir %s  (pip install tensorboard)",
                     self.logdir)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module)

    def _log(self, trainer, pl_module) -> None:
        step = int(trainer.global_step)
        if step == self._done or not trainer.is_global_zero or self._stopped:
            return
        self._done = step
        was_training = pl_module.training
        devices = [pl_module.device.index or 0] if pl_module.device.type == "cuda" else []
        try:
            # a forked generator: the training's noise continues as if nothing was drawn here (exact resume)
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(self.settings.seed)
                pl_module.eval()
                items = self.make_items(pl_module)
        finally:
            pl_module.train(was_training)
        try:
            self._write(items, step)
        except OSError as exc:  # disk full, file too large: the training goes on (its checkpoints report it)
            self._stopped = True
            log.warning("listening stopped: cannot write to %s (%s)", self.logdir, exc)

    def _write(self, items: Items, step: int) -> None:
        """Events in a file of their own, written here and now: tensorboardX's writer thread dies on a write
        error and then blocks every later write of the run's metrics (a full disk would hang the training)."""
        from tensorboardX import summary
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event

        if self._events is None:
            self.logdir.mkdir(parents=True, exist_ok=True)
            self._events = EventsWriter(str(self.logdir / "events"), ".listen")
        for tag, audio, sr in items:
            audio = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1, 1)
            for s in (summary.audio(f"listen/{tag}", audio, sample_rate=sr),
                      summary.image(f"spectrogram/{tag}", spectrogram_image(audio, sr), dataformats="HWC")):
                self._events.write_event(Event(wall_time=time.time(), step=step, summary=s))
        self._events.flush()

    def teardown(self, trainer, pl_module, stage) -> None:
        if self._events is not None:
            try:
                self._events.close()
            except OSError:
                pass
            self._events = None


def pipeline_listener(pipe, files: list, audio, settings: ListenSettings) -> Callable | None:
    """Reconstructions of ``files`` (first ``items``, cropped) and, for temporal VAEs, unconditional samples."""
    from audiogen.audio.io import load_audio

    if pipe.decoder is None or (pipe.latent_model is None and getattr(pipe.decoder, "out_channels", 1) != 1):
        return None  # nothing audible: encoder pretraining
    sr = audio.sample_rate
    n = int(settings.seconds * sr)
    originals = []
    for f in files[: settings.items]:
        info = f if hasattr(f, "frames") else None  # run indexes hold probed AudioInfo
        want = n if info is None else max(1, min(n, int(info.frames * sr / info.sample_rate)))
        x = load_audio(getattr(f, "path", f), sr, channels=audio.channels, resample=audio.resample, frames=want,
                       info=info)
        f = getattr(f, "path", f)
        originals.append((Path(f).stem, x[: len(x) // pipe.hop * pipe.hop] if len(x) >= pipe.hop else x))
    first = [True]

    def make(module) -> Items:
        dev = module.device
        out: Items = []
        for i, (name, x) in enumerate(originals):
            wave = torch.from_numpy(x)[None, None].to(dev)
            y = pipe.vae_reconstruct(wave) if pipe.latent_model is not None else pipe.reconstruct(wave)
            out.append((f"reconstruction_{i}_{name}", y[0, 0, : len(x)].float().cpu().numpy(), sr))
            if first[0]:
                out.append((f"original_{i}_{name}", x, sr))
        first[0] = False
        if pipe.latent_model is not None:
            samples = pipe.generate(settings.items, math.ceil(n / pipe.hop) * pipe.hop)
            out += [(f"sample_{i}", s[0].float().cpu().numpy(), sr) for i, s in enumerate(samples)]
        return out

    return make


def prior_listener(prior, record, settings: ListenSettings) -> Callable | None:
    """Prior samples, de-normalised (``record.normalization``) and decoded by the autoencoder the dataset's record
    names (loaded once, aside from the run's gin config); None when it names none."""
    from audiogen import config

    if not record.decodable:
        log.info("listen: the prior's data names no autoencoder, so there is nothing to decode samples with")
        return None
    from audiogen.errors import AudiogenError
    from audiogen.latents.decode import decoder_pipeline

    try:
        with config.isolated():
            decoder = decoder_pipeline(record).decoder
    except AudiogenError as exc:  # listening is an extra: a moved or changed autoencoder must not stop training
        log.warning("listen: cannot decode samples with the dataset's autoencoder, so none are logged (%s)",
                    str(exc).splitlines()[0])
        return None
    norm, sr = record.normalization, record.sample_rate
    frames = max(1, int(settings.seconds * sr) // record.hop)

    def make(module) -> Items:
        z = prior.sample(settings.items, frames).float()
        if norm is not None:
            z = z * torch.tensor(norm["std"], device=z.device)[:, None] + torch.tensor(norm["mean"], device=z.device)[:, None]
        return [(f"sample_{i}", decoder(zi[None].cpu())[0, 0].numpy(), int(sr)) for i, zi in enumerate(z)]

    return make


def listen_callbacks(listener: Callable[[ListenSettings], Callable | None], every: int, out: Path) -> list:
    """[ListenCallback] when ``listen.enabled`` and ``listener(settings)`` gives something to hear, else []."""
    s = listen_settings()
    make_items = listener(s) if s.enabled else None
    if make_items is None:
        return []
    return [ListenCallback(make_items, every, s, Path(out) / "logs" / "tensorboard")]
