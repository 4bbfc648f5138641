"""The training machinery of ``audiogen train`` and ``train-prior``, on Lightning.

A run folder holds ``checkpoints/`` (``last.ckpt`` for resuming, rewritten every ``train.val_every`` steps),
``model.ckpt`` (the final weights and metadata), ``operative_config.gin``, CSV logs
``logs/version_N/metrics.csv`` (one per start) and TensorBoard logs ``logs/tensorboard/``.
Re-running the same command on the same folder resumes from ``checkpoints/last.ckpt`` with its saved config.

With several processes (``train.devices``, ``train.num_nodes``, torchrun or SLURM) each rank trains on its share of
every global batch under Lightning's DDP; rank 0 writes the run folder.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from audiogen import config
from audiogen.artifacts import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    atomic_write_text,
    folder_lock,
    versions,
)
from audiogen.audio.dataset import (
    AudioDataset,
    LengthGroupedBatchSampler,
    _seed_from,
    collate_audio,
)
from audiogen.checkpoint_io import AtomicCheckpointIO, writable_folder, write_failure
from audiogen.distributed import is_main_process, rank_share, resolve_shape, split_batch
from audiogen.errors import ConfigError, TrainingDiverged
from audiogen.pipeline import Pipeline
from audiogen.progress import stderr_progress_bar
from audiogen.settings import (
    AudioSettings,
    TrainSettings,
    train_settings,
)

log = logging.getLogger("audiogen")


class AudiogenModule(L.LightningModule):
    """What every audiogen training run shares: Adam, clipping that refuses non-finite gradients, a divergence
    message with the fixes, exact resume of the RNG, and provenance in every checkpoint."""

    kind = "pipeline"

    def __init__(self, settings: TrainSettings, provenance: dict):
        super().__init__()
        self.settings = settings
        self.provenance = provenance

    def _log_all(self, out: dict, stage: str, bs: int) -> None:
        for k, v in out.items():
            # sync_dist: the mean over ranks, i.e. over the global batch (a no-op in a single process)
            self.log(f"{stage}/{k}", v.detach().float(), prog_bar=k in ("loss", "elbo"), batch_size=bs,
                     on_step=stage == "train", on_epoch=stage != "train", sync_dist=True)

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        # every rank decides on the global loss, so that all of them stop at the same step (none left waiting)
        total = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean") if self.trainer.world_size > 1 else loss
        if not torch.isfinite(total):
            self._diverged(f"loss became {total.item()}")
        return loss

    def _diverged(self, what: str):
        raise TrainingDiverged(
            f"{what} at step {self.global_step}; likely causes: learning rate too high "
            f"(train.lr={self.settings.lr}), gradient clipping off or too loose (train.grad_clip="
            f"{self.settings.grad_clip}, train.grad_clip_value={self.settings.grad_clip_value}), NaN/inf in the "
            f"input audio, or an output distribution scale collapsing. The last good checkpoint is kept in "
            f"checkpoints/last.ckpt; re-running resumes from it (lower train.lr first).")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.settings.grad_clip_value:
            torch.nn.utils.clip_grad_value_(params, self.settings.grad_clip_value)
        norm = torch.nn.utils.clip_grad_norm_(params, self.settings.grad_clip or float("inf"))
        if not torch.isfinite(norm):  # clipping a non-finite norm would write NaN into every weight
            self._diverged(f"the gradient norm became {norm.item()}")
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "valid")

    def setup(self, stage: str) -> None:
        if self.trainer.world_size > 1:  # ranks draw different noise for their different items
            torch.manual_seed(_seed_from(self.settings.seed, self.trainer.global_rank))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        rng = checkpoint.get("audiogen_rng")
        if rng is None:
            return
        # the posterior noise continues as if the run had never stopped (each rank its own stream; resumed with
        # another number of processes, rank r > 0 starts a fresh stream)
        ranks, rank = rng.get("ranks") or [rng["torch"]], self.trainer.global_rank
        if rank < len(ranks) and len(ranks) == self.trainer.world_size:
            torch.set_rng_state(ranks[rank])
        elif rank == 0:
            torch.set_rng_state(rng["torch"])
        else:
            torch.manual_seed(_seed_from(self.settings.seed, rank, int(checkpoint.get("global_step", 0))))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.settings.lr)
        if self.settings.lr_schedule == "constant":
            return opt
        total = self.settings.max_steps
        # cosine from lr to lr / 10 over max_steps; Lightning keeps its state in checkpoints, so a resume continues it
        decay = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.1 + 0.45 * (1 + math.cos(math.pi * min(step, total) / total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": decay, "interval": "step"}}

    def on_fit_start(self) -> None:
        # Where the weights are trained (recorded: a figure from another device is not comparable). Read now:
        # Lightning moves the module back to the CPU before the final model.ckpt is written.
        dev = self.device
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
        self._trained_on = {"device": dev.type, "name": name, "processes": int(self.trainer.world_size),
                            "threads": torch.get_num_threads()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["audiogen"] = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": self.kind,
            "operative_config": config.operative_config(), "created_by": versions(),
            "global_step": int(self.global_step), "trained_on": getattr(self, "_trained_on", None), **self.provenance,
        }
        state = torch.get_rng_state()
        checkpoint["audiogen_rng"] = {"torch": state}
        if self.trainer.world_size > 1:  # called on every rank; rank 0 writes what it gathered
            import torch.distributed as dist

            mine = state.to(self.device)  # NCCL gathers device tensors
            gathered = [torch.empty_like(mine) for _ in range(self.trainer.world_size)]
            dist.all_gather(gathered, mine)
            checkpoint["audiogen_rng"]["ranks"] = [g.cpu() for g in gathered]


class PipelineModule(AudiogenModule):
    def __init__(self, pipeline: Pipeline, settings: TrainSettings, provenance: dict):
        super().__init__(settings, provenance)
        self.pipeline = pipeline
        self._val_active: dict[str, float] = {}

    def _step(self, batch, stage: str):
        out = self.pipeline.training_loss(batch["audio"], batch["mask"], int(self.global_step))
        self._log_all(out, stage, batch["audio"].shape[0])
        if stage == "valid":
            for k, v in out.items():
                if k.startswith("active_"):
                    self._val_active[k] = max(self._val_active.get(k, 0.0), float(v))
        return out["loss"]

    def on_validation_epoch_end(self):
        dead = [k.split("_", 1)[1] for k, v in sorted(self._val_active.items()) if v == 0]
        if dead:
            log.warning("step %d: %s dead (no active units: posterior means do not vary across the data); "
                        "consider free nats (elbo.free_nats) or KL warm-up (elbo.beta = @anneal.linear())",
                        self.global_step, ", ".join(dead))
        self._val_active = {}


class ResumableBatches(LengthGroupedBatchSampler):
    """Length-grouped batches that can start ``skip`` batches into an epoch (mid-epoch resume).

    ``batch_size`` is the global batch. Under DDP every rank draws the same global batches (same seed and epoch)
    and yields its share of each (:func:`audiogen.distributed.rank_share`), so the ranks together train on exactly
    the batches of a single-process run. Lightning must not swap in its DistributedSampler
    (``use_distributed_sampler=False``)."""

    skip = 0  # kept for the whole resumed epoch: Lightning may create (and prefetch) its iterator twice
    ranks: tuple[int, int] | None = None  # (rank, world); None: from the process group when iterated

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        super().set_epoch(epoch)

    def __iter__(self):
        from audiogen.distributed import current_rank

        rank, world = self.ranks or current_rank()
        for k, batch in enumerate(super().__iter__()):
            if k >= self.skip:
                yield rank_share(batch, rank, world)


class ResumableLoader(DataLoader):
    """A DataLoader Lightning can checkpoint: it records how many batches of the epoch were trained on, and
    a resumed run skips them, so that resuming continues exactly where the interrupted run stopped."""

    batches_done = 0

    def state_dict(self) -> dict:
        return {"epoch": int(self.batch_sampler.epoch), "batches_done": int(self.batches_done)}

    def load_state_dict(self, state: dict) -> None:
        # Lightning restarts the interrupted epoch without calling on_train_epoch_start: restore it here
        self.batch_sampler.set_epoch(state["epoch"])
        self.dataset.set_epoch(state["epoch"])
        self.batch_sampler.skip = int(state["batches_done"])


class EpochCallback(L.Callback):
    """New shuffling and new random crops every epoch, reproducible from (seed, epoch); tracks the position in the
    epoch for exact resume. (Lightning calls ``set_epoch`` only on plain samplers, not on ours.)"""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader
        for obj in (loader.batch_sampler, loader.dataset):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(trainer.current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        trainer.train_dataloader.batches_done = batch_idx + 1  # before ModelCheckpoint saves (callback order)


def _loader(files, audio: AudioSettings, s: TrainSettings, hop: int, train: bool) -> DataLoader:
    crop = int(s.crop_seconds * audio.sample_rate) if train else None
    crop = crop if crop is None else max(hop, crop // hop * hop)
    ds = AudioDataset(files, audio.sample_rate, crop=crop, channels=audio.channels, resample=audio.resample,
                      seed=s.seed)
    return batch_loader(ds, s.batch_size, s.seed, s.num_workers, functools.partial(collate_audio, multiple_of=hop),
                        train)


def batch_loader(ds, batch_size: int, seed: int, workers: int, collate_fn, train: bool) -> DataLoader:
    """Length-grouped batches of ``ds``; for training, resumable mid-epoch (``ResumableLoader``)."""
    sampler = ResumableBatches(ds.lengths, batch_size, shuffle=train, seed=seed)
    return (ResumableLoader if train else DataLoader)(ds, batch_sampler=sampler, num_workers=workers,
                      collate_fn=collate_fn,
                      persistent_workers=False,  # fresh workers see each epoch's set_epoch
                      # its own generator: starting an epoch must not draw from the global RNG (exact resume)
                      generator=torch.Generator().manual_seed(seed))


def locks_run_folder(fn):
    """``fn(data, out, ...)`` run holding ``out/lock``: a second `train` or `train-prior` on the same run folder is
    refused while the first runs (rank 0 holds the lock for every rank of a distributed run)."""
    @functools.wraps(fn)
    def run(data, out, *args, **kwargs):
        writable_folder(Path(out), "run folder")  # a clean error before the lock's folder is made
        with folder_lock(Path(out), "training run", hold=is_main_process()):
            return fn(data, out, *args, **kwargs)
    return run


def start_run(out: Path, gin_files: list[str], bindings: list[str], example: str) -> tuple[Path, TrainSettings]:
    """Parse the run's config (a resumed run's saved config first), set threads and seeds; returns
    (``checkpoints/last.ckpt``, train settings). ``example`` is the gin file suggested when none is given."""
    for noisy in ("lightning.pytorch", "lightning.fabric"):  # GPU/TPU banners and tips
        logging.getLogger(noisy).setLevel(logging.WARNING)
    writable_folder(out, "run folder")  # before anything is built: a clean error, not a traceback later
    last = out / "checkpoints" / "last.ckpt"
    base, base_source = None, f"checkpoint {last}"
    if last.exists():
        from audiogen.artifacts import load_checkpoint
        from audiogen.plugins import check_provenance, provenance_of

        record = load_checkpoint(last)["audiogen"]
        check_provenance(provenance_of(record), f"this run ({last})")  # before gin reads its config
        base = record["operative_config"]
        log.info("resuming from %s", last)
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
    return last, s


def fit(module: AudiogenModule, out: Path, s: TrainSettings, train_loader, valid_loader, last: Path,
        progress: bool, callbacks: list = ()) -> Path:
    """Run (or resume) Lightning on ``module``; write operative_config.gin and model.ckpt in ``out``."""
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
        callbacks=[ckpt_cb, EpochCallback(), *callbacks, *([stderr_progress_bar()] if progress else [])], log_every_n_steps=s.log_every, plugins=[AtomicCheckpointIO()],
        val_check_interval=min(s.val_every, s.max_steps) if valid_loader else None,
        check_val_every_n_epoch=None if valid_loader else 1, limit_val_batches=None if valid_loader else 0,
        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=False,
    )
    import warnings

    # runs without --valid: Lightning would warn that validation_step has no data on every start
    warnings.filterwarnings("ignore", message=".*validation_step.*val_dataloader.*")
    try:
        trainer.fit(module, train_loader, valid_loader, ckpt_path=str(last) if last.exists() else None,
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
                          fix="drop the --gin/--bind options that change the model, or use a new -o folder") from None
    return final
