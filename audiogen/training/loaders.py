"""Batches a run can stop and resume in the middle of an epoch, on any number of ranks: length-grouped,
reshuffled and re-cropped every epoch from (seed, epoch), and skipping on resume the batches already trained on."""

from __future__ import annotations

import functools

import lightning as L
import torch
from torch.utils.data import DataLoader

from audiogen.audio.dataset import AudioDataset, LengthGroupedBatchSampler, collate_audio
from audiogen.distributed import rank_share
from audiogen.settings import AudioSettings, TrainSettings


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


def audio_loader(files, audio: AudioSettings, s: TrainSettings, hop: int, train: bool) -> DataLoader:
    """Batches of ``files``: random crops of ``train.crop_seconds`` for training, whole files for validation, each
    padded to a multiple of the pipeline's ``hop``."""
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
