"""Waveform datasets: whole files or reproducible random crops, padding collation, and a
batch sampler that groups items of similar length to waste little padding."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from audiogen.audio.io import AudioInfo, check_policy, frames_at_rate, load_audio, probe
from audiogen.errors import AudioFileError


def _seed_from(*parts: int) -> int:
    # SeedSequence mixes the parts well, so (seed, epoch, i) and (seed, epoch, i+1) are unrelated.
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class AudioDataset(Dataset):
    """Mono float waveforms at ``sample_rate``, whole files or random crops of ``crop`` frames.

    Crop starts are drawn from a generator seeded by (seed, epoch, index), so a run is
    reproducible and every epoch sees new crops; call :meth:`set_epoch` each epoch (with
    DataLoader workers, do it before the iterator is created, i.e. not with persistent workers).

    ``files`` may hold :class:`AudioInfo` (from a manifest or :func:`~audiogen.audio.io.index_inputs`): those are
    not probed again, so a dataset of 200k files opens in well under a second.
    """

    def __init__(
        self,
        files: Sequence[str | Path | AudioInfo],
        sample_rate: int,
        crop: int | None = None,
        channels: str = "downmix",
        resample: bool = True,
        seed: int = 0,
        min_frames: int = 1,
    ):
        if crop is not None and crop <= 0:
            raise ValueError(f"crop must be a positive number of frames or None, got {crop}")
        self.sample_rate = int(sample_rate)
        self.crop = crop
        self.channels = channels
        self.resample = resample
        self.seed = int(seed)
        self.epoch = 0
        self.infos: list[AudioInfo] = [f if isinstance(f, AudioInfo) else probe(f) for f in files]
        self.files = [i.path for i in self.infos]
        self.file_frames = [frames_at_rate(i.frames, i.sample_rate, self.sample_rate) for i in self.infos]
        for info, n in zip(self.infos, self.file_frames):
            self._check(info, n, min_frames)
        self.lengths = [n if crop is None else min(n, crop) for n in self.file_frames]

    def _check(self, info: AudioInfo, frames: int, min_frames: int) -> None:
        # Fail at construction, not hours into training.
        check_policy(info, self.sample_rate, channels=self.channels, resample=self.resample)
        if frames < min_frames:
            raise AudioFileError(
                f"{info.path} has {frames} frames at {self.sample_rate} Hz, fewer than min_frames={min_frames}",
                path=info.path, fix="remove the file from the inputs or lower min_frames")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def crop_start(self, i: int) -> int:
        """Start frame (target rate) of item i's crop in the current epoch; 0 when not cropped."""
        spare = self.file_frames[i] - self.lengths[i]
        if self.crop is None or spare <= 0:
            return 0
        gen = torch.Generator().manual_seed(_seed_from(self.seed, self.epoch, i))
        return int(torch.randint(0, spare + 1, (1,), generator=gen))

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} files")
        info = self.infos[i]
        kwargs = dict(channels=self.channels, resample=self.resample, info=info)
        if self.crop is not None and self.file_frames[i] > self.crop:
            x = load_audio(info.path, self.sample_rate, offset=self.crop_start(i), frames=self.crop, **kwargs)
        else:
            x = load_audio(info.path, self.sample_rate, **kwargs)
        audio = torch.from_numpy(x).unsqueeze(0)
        return {"audio": audio, "length": audio.shape[-1], "index": i}


def collate_audio(items: Sequence[dict], multiple_of: int | None = None) -> dict:
    """Stack items into audio (B, 1, Tmax) zero-padded, mask (B, Tmax), lengths and index.

    ``multiple_of`` rounds Tmax up (e.g. to the model's total stride); bind it with
    functools.partial for a DataLoader.
    """
    if not items:
        raise ValueError("collate_audio needs at least one item")
    lengths = torch.tensor([int(it["audio"].shape[-1]) for it in items], dtype=torch.long)
    t_max = int(lengths.max())
    if multiple_of and multiple_of > 1:
        t_max = max(math.ceil(t_max / multiple_of), 1) * multiple_of
    audio = torch.zeros(len(items), 1, t_max, dtype=items[0]["audio"].dtype)
    for b, it in enumerate(items):
        audio[b, :, : lengths[b]] = it["audio"].reshape(1, -1)
    mask = torch.arange(t_max).unsqueeze(0) < lengths.unsqueeze(1)
    index = torch.tensor([int(it["index"]) for it in items], dtype=torch.long)
    return {"audio": audio, "mask": mask, "lengths": lengths, "index": index}


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar-length items, in random order, reproducible per (seed, epoch).

    Indices are shuffled, cut into groups of ``batch_size * group_size_multiplier``, each group
    is sorted by length and split into batches, and the batch order is shuffled. Local groups
    keep randomness across epochs while padding stays small. ``shuffle=False`` gives batches of
    the globally length-sorted indices, in order.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        group_size_multiplier: int = 50,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if group_size_multiplier <= 0:
            raise ValueError(f"group_size_multiplier must be positive, got {group_size_multiplier}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.group_size = self.batch_size * int(group_size_multiplier)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _split(self, order: Tensor) -> list[list[int]]:
        return [order[s : s + self.batch_size].tolist() for s in range(0, len(order), self.batch_size)]

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            return self._drop_short(self._split(torch.argsort(self.lengths, stable=True)))
        gen = torch.Generator().manual_seed(_seed_from(self.seed, self.epoch))
        perm = torch.randperm(n, generator=gen)
        batches: list[list[int]] = []
        for s in range(0, n, self.group_size):
            group = perm[s : s + self.group_size]
            group = group[torch.argsort(self.lengths[group], stable=True)]
            batches.extend(self._split(group))
        batches = self._drop_short(batches)
        return [batches[j] for j in torch.randperm(len(batches), generator=gen).tolist()]

    def _drop_short(self, batches: list[list[int]]) -> list[list[int]]:
        # Groups are whole multiples of batch_size, so only the very last batch can be short.
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

