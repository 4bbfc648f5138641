"""A training run's folder: one writer at a time (``locks_run_folder``), started over on request
(``overwrite``), configured from the saved config when it resumes (``start_run``), and trained (``fit``).

A run folder holds ``checkpoints/`` (``last.ckpt`` for resuming, rewritten every ``train.val_every`` steps),
``model.ckpt`` (the final weights and metadata), ``operative_config.gin``, CSV logs
``logs/version_N/metrics.csv`` (one per start) and TensorBoard logs ``logs/tensorboard/``. Re-running a command on
the same folder resumes from ``checkpoints/last.ckpt`` with its saved config (bindings given again apply on top);
with ``overwrite`` the folder's contents are deleted first and the run starts at step 0.

With several processes (``train.devices``, ``train.num_nodes``, torchrun or SLURM) each rank trains on its share of
every global batch under Lightning's DDP; rank 0 writes the run folder.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from audiogen import config
from audiogen.artifacts import (
    RUN_MARKERS,
    atomic_write_text,
    check_output,
    clear_folder,
    folder_lock,
    refuse_live_lock,
)
from audiogen.checkpoint_io import AtomicCheckpointIO, writable_folder, write_failure
from audiogen.distributed import is_main_process, resolve_shape, split_batch
from audiogen.errors import ConfigError
from audiogen.progress import stderr_progress_bar
from audiogen.settings import TrainSettings, train_settings
from audiogen.training.loaders import EpochCallback
from audiogen.training.module import AudiogenModule

log = logging.getLogger("audiogen")

def locks_run_folder(fn):
    """``fn(data, out, ..., valid=None, overwrite=False)`` run holding ``out/lock``: a second `train` or
    `train-prior` on the same run folder is refused while the first runs (rank 0 holds the lock for every rank of a
    distributed run). ``out`` is checked first (``check_output``): it is none of the inputs and holds none, and a
    folder that holds anything must be an audiogen run (one of ``RUN_MARKERS``), resumed, or with ``overwrite``
    cleared once the lock is taken, i.e. never under a running process."""
    @functools.wraps(fn)
    def run(data, out, *args, overwrite: bool = False, **kwargs):
        given = inspect.signature(fn).bind_partial(data, out, *args, **kwargs).arguments
        inputs = [*_paths(data), *_paths(given.get("valid"))]
        if is_main_process():  # the other ranks start once rank 0 holds the lock (a folder that is not empty)
            if Path(out).is_dir():  # a running writer's half-written folder is refused as running, not as foreign
                refuse_live_lock(Path(out), "training run")
            check_output(Path(out), overwrite, inputs, markers=RUN_MARKERS, what="run folder", resumes=True,
                         clear=False, ignore=("lock",))
        writable_folder(Path(out), "run folder")  # a clean error before the lock's folder is made
        with folder_lock(Path(out), "training run", hold=is_main_process()) as lock:
            if overwrite and lock is not None:  # rank 0, which holds the lock: everything but the lock goes
                clear_folder(Path(out), keep=(lock.name,))
                log.info("--overwrite: cleared %s", out)
            return fn(data, out, *args, overwrite=overwrite, **kwargs)
    return run


def _paths(x) -> list:
    return [] if x is None else [x] if isinstance(x, (str, os.PathLike)) else list(x)


def start_run(out: Path, gin_files: list[str], bindings: list[str], example: str,
              overwrite: bool = False) -> tuple[Path | None, TrainSettings]:
    """Parse the run's config (a resumed run's saved config first), set threads and seeds; returns (the checkpoint
    to resume from, ``checkpoints/last.ckpt`` or None for a fresh start, train settings). ``example`` is the gin
    file suggested when none is given. ``overwrite``: a fresh start whatever the folder holds (on every rank, though
    rank 0 alone clears it)."""
    for noisy in ("lightning.pytorch", "lightning.fabric"):  # GPU/TPU banners and tips
        logging.getLogger(noisy).setLevel(logging.WARNING)
    writable_folder(out, "run folder")  # before anything is built: a clean error, not a traceback later
    last = out / "checkpoints" / "last.ckpt"
    resume = None if overwrite or not last.exists() else last
    base, base_source = None, f"checkpoint {last}"
    if resume:
        from audiogen.artifacts import load_checkpoint
        from audiogen.plugins import check_provenance, provenance_of

        record = load_checkpoint(resume)["audiogen"]
        check_provenance(provenance_of(record), f"this run ({resume})")  # before gin reads its config
        base = record["operative_config"]
        log.info("resuming from %s", resume)
    elif not gin_files and not bindings:
        raise ConfigError("no configuration given", fix=f"pass --gin {example}")
    config.parse(gin_files, bindings, base=base, base_source=base_source)
    s = train_settings()
    # checked here, before the run's file index is written: the samplers share each global batch over the ranks
    devices, num_nodes = resolve_shape(s.devices, s.num_nodes, "train")
    split_batch(s.batch_size, devices * num_nodes)
    if s.threads:
        torch.set_num_threads(s.threads)
    L.seed_everything(s.seed, workers=True, verbose=False)
    return resume, s


def follows_the_load(s: TrainSettings, world: int) -> bool:
    """Whether training re-chooses its threads as the load changes: a one-process run of an ``audiogen`` training
    command whose threads the user left to it (no OMP_NUM_THREADS, GOMP_SPINCOUNT, OMP_WAIT_POLICY or
    train.threads; see ``audiogen.cpu``)."""
    from audiogen import cpu

    return cpu.adaptive and world == 1 and not s.threads


class FollowTheLoad(L.Callback):
    """``audiogen.cpu.ThreadGovernor`` on the training loop: between steps, torch's threads follow the cores other
    processes leave idle. The threads used are recorded with the run (``trained_on``)."""

    def on_fit_start(self, trainer, pl_module) -> None:
        from audiogen.cpu import ThreadGovernor

        self.threads, self.governor = torch.get_num_threads(), None
        if pl_module.device.type == "cpu":
            try:
                self.governor = ThreadGovernor()
            except (OSError, ValueError, IndexError):  # no /proc/stat to read: the threads stay as chosen
                pass

    def on_fit_end(self, trainer, pl_module) -> None:
        torch.set_num_threads(self.threads)  # what runs next in this process (quickstart's encode) starts afresh

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        threads = self.governor.follow() if self.governor else None
        if threads:
            log.debug("other processes leave %d core(s) idle: training on %d thread(s)", threads, threads)
            used = getattr(pl_module, "_trained_on", None)
            if used is not None:
                used["threads_followed_the_load"] = sorted({*used.get("threads_followed_the_load", []), threads})


def fit(module: AudiogenModule, out: Path, s: TrainSettings, train_loader, valid_loader, resume: Path | None,
        progress: bool, callbacks: list = ()) -> Path:
    """Run Lightning on ``module`` (resumed from ``resume``, a ``checkpoints/last.ckpt``, when given); write
    operative_config.gin and model.ckpt in ``out``."""
    devices, num_nodes = resolve_shape(s.devices, s.num_nodes, "train")
    world = devices * num_nodes  # start_run has refused a global batch that does not split over the ranks
    strategy = "ddp" if s.strategy == "auto" and world > 1 else s.strategy  # never Lightning's spawn on CPU
    out.mkdir(parents=True, exist_ok=True)
    ckpt_cb = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, every_n_train_steps=s.val_every,
                              save_top_k=0, enable_version_counter=False)
    trainer = L.Trainer(
        default_root_dir=out, max_steps=s.max_steps,
        max_time={"seconds": s.max_minutes * 60} if s.max_minutes else None, accelerator=s.accelerator,
        devices=devices, num_nodes=num_nodes, strategy=strategy,
        use_distributed_sampler=False,  # our batch samplers give each rank its share (ResumableBatches)
        # one CSV per (re)start, so a resumed run never overwrites the metrics of the earlier part
        logger=[CSVLogger(out, name="logs"), TensorBoardLogger(out, name="logs", version="tensorboard")],
        callbacks=[ckpt_cb, EpochCallback(), *callbacks, *([stderr_progress_bar()] if progress else []),
                   *([FollowTheLoad()] if follows_the_load(s, world) else [])],
        log_every_n_steps=s.log_every, plugins=[AtomicCheckpointIO()],
        val_check_interval=min(s.val_every, s.max_steps) if valid_loader else None,
        check_val_every_n_epoch=None if valid_loader else 1, limit_val_batches=None if valid_loader else 0,
        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=False,
    )
    import warnings

    # runs without --valid: Lightning would warn that validation_step has no data on every start
    warnings.filterwarnings("ignore", message=".*validation_step.*val_dataloader.*")
    try:
        trainer.fit(module, train_loader, valid_loader, ckpt_path=str(resume) if resume else None,
                    weights_only=True)
        if trainer.is_global_zero:
            atomic_write_text(out / "operative_config.gin", config.operative_config())
        final = out / "model.ckpt"
        # on every rank (it gathers and synchronises); Lightning writes it from rank 0
        trainer.save_checkpoint(final, weights_only=True)  # weights + metadata; resuming uses checkpoints/last.ckpt
    except OSError as exc:  # disk full, file too large, folder made read-only: every file is atomic, none is torn
        raise write_failure(out, exc) from None
    except RuntimeError as exc:
        if "loading state_dict" not in str(exc):
            raise
        raise ConfigError(f"the run in {out} was trained with another architecture than the one configured now "
                          f"({str(exc).splitlines()[0]})",
                          fix="drop the --gin/--bind options that change the model, or start over with --overwrite "
                              "(which deletes the run's checkpoints), or use a new -o folder") from None
    return final
