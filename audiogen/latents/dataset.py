"""Latent datasets: ``meta.json`` plus ``shards/shard-NNNNN.npy`` loaded by memory map.

Layout: each shard is one float array (frames, latent_size); a file's latents are the rows
``[offset, offset + length)`` of its shard. ``meta.json`` (written last: its presence marks a complete
dataset) records the format version, what made the latents (encoder, operative gin config, checkpoint hash,
versions), sample rate, hop, latent size, dtype, per-dimension statistics, and per file its source, duration,
latent length, shard and offset. Items are served channels-first, (latent_size, length), like encoder output.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from audiogen.artifacts import check_format_version
from audiogen.errors import ArtifactError

FORMAT = "audiogen.latents"
VERSION = 1
STD_FLOOR = 1e-8  # dimensions that never vary are left unscaled rather than divided by zero
DTYPES = ("float32", "float16")
_SHARD_NAME = re.compile(r"shard-\d{5,}\.npy")


@dataclass
class RunningStats:
    """Per-dimension count, mean, sum of squared deviations, min, max; merged exactly (Chan et al.)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> "RunningStats":
        return cls(0, np.zeros(dim), np.zeros(dim), np.full(dim, np.inf), np.full(dim, -np.inf))

    @classmethod
    def of(cls, x: np.ndarray) -> "RunningStats":
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return cls.empty(x.shape[1])
        mean = x.mean(0)
        return cls(len(x), mean, ((x - mean) ** 2).sum(0), x.min(0), x.max(0))

    def merge(self, other: "RunningStats") -> "RunningStats":
        n = self.count + other.count
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / n
        return RunningStats(n, mean, m2, np.minimum(self.min, other.min), np.maximum(self.max, other.max))

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1))

    def to_json(self) -> dict:
        return {"count": int(self.count), "mean": self.mean.tolist(), "m2": self.m2.tolist(),
                "std": self.std.tolist(), "min": self.min.tolist(), "max": self.max.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "RunningStats":
        return cls(int(d["count"]), np.array(d["mean"], dtype=np.float64), np.array(d["m2"], dtype=np.float64),
                   np.array(d["min"], dtype=np.float64), np.array(d["max"], dtype=np.float64))


def read_meta(path: str | Path) -> dict:
    """The checked ``meta.json`` of a latent dataset (a folder or the json file itself).

    Any damage (not JSON, wrong types, missing keys, shard names outside ``shards/``, file rows pointing past their
    shard) is an ArtifactError naming the file; other format versions are refused with what to do.
    """
    path = Path(path)
    meta_path = path / "meta.json" if path.is_dir() or not path.name.endswith(".json") else path
    if not meta_path.is_file():
        partial = path.with_name(path.name + ".partial")
        if partial.exists():
            raise ArtifactError(f"latent dataset {path} is incomplete (an interrupted encode left {partial})",
                                fix="re-run the same `audiogen encode` command to resume it")
        raise ArtifactError(f"{path} is not a latent dataset (no meta.json)",
                            fix="create one with `audiogen encode`")
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArtifactError(f"{meta_path} is not valid JSON ({exc})", fix="re-encode the dataset") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtifactError(f"{meta_path} is not an audiogen latent dataset (format {found!r})")
    check_format_version(meta_path, meta, VERSION, "latent dataset",
                         "re-encode the audio with `audiogen encode` (the old format has no upgrade path)")
    _check_meta(meta_path, meta)
    return meta


def _is_int(x, low: int = 0) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _check_meta(meta_path: Path, meta: dict) -> None:
    """Types and cross-references of a version-1 meta.json; O(files) with small constants (no file system access)."""
    def bad(what: str):
        return ArtifactError(f"{meta_path} is damaged: {what}", fix="re-encode the dataset with `audiogen encode`")

    missing = [k for k in ("latent_size", "dtype", "stats", "shards", "files") if k not in meta]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    c = meta["latent_size"]
    if not _is_int(c, 1):
        raise bad(f"latent_size is {c!r}, not a positive integer")
    if meta["dtype"] not in DTYPES:
        raise bad(f"dtype is {meta['dtype']!r}, not one of {', '.join(DTYPES)}")
    stats = meta["stats"]
    for k in ("mean", "std"):
        v = stats.get(k) if isinstance(stats, dict) else None
        if not (isinstance(v, list) and len(v) == c and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                             for x in v)):
            raise bad(f"stats.{k} is not a list of {c} finite numbers")
    shards = meta["shards"]
    if not isinstance(shards, list):
        raise bad("shards is not a list")
    frames = []
    for k, sh in enumerate(shards):
        name = sh.get("name") if isinstance(sh, dict) else None
        # the name is joined to shards/: nothing in meta.json may point outside the dataset
        if not (isinstance(name, str) and _SHARD_NAME.fullmatch(name) and _is_int(sh.get("frames"))):
            raise bad(f"shards[{k}] is {sh!r}, expected {{'name': 'shard-NNNNN.npy', 'frames': int}}")
        frames.append(sh["frames"])
    files = meta["files"]
    if not isinstance(files, list):
        raise bad("files is not a list")
    n = len(frames)
    for i, f in enumerate(files):
        try:
            k, off, length = f["shard"], f["offset"], f["length"]
            ok = _is_int(length) and _is_int(off) and _is_int(k) and k < n and off + length <= frames[k]
        except (TypeError, KeyError):
            ok = False
        if not ok:
            raise bad(f"files[{i}] is {f!r}: it needs integer shard, offset and length inside its shard")


def _check_regular(shard: Path) -> None:
    """A shard is a plain file inside the dataset: not a link (which could lead out of it) nor a pipe or device
    (which would block the reader or never end), here or in ``shards/`` itself."""
    import stat

    for q in (shard.parent, shard):
        try:
            mode = q.lstat().st_mode
        except OSError:  # missing: np.load says so
            return
        if stat.S_ISLNK(mode) or (q is shard and not stat.S_ISREG(mode)):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise ArtifactError(f"{q} is {kind}; a latent dataset's shards are plain files inside it",
                                fix="copy the dataset with its files (cp -rL), or re-encode it")


class LatentDataset(Dataset):
    """Latent sequences from an ``audiogen encode`` folder: random crops of ``crop`` frames or whole sequences.

    ``normalize=True`` serves (x - mean) / std with the stored statistics; ``denormalize`` is its exact inverse.
    Items: dict(latents=(C, L) float32, length=int, index=int).
    """

    def __init__(self, path: str | Path, crop: int | None = None, normalize: bool = False, seed: int = 0,
                 min_length: int = 1):
        self.path = Path(path)
        self._init_from_meta(read_meta(self.path), crop, normalize, seed, min_length)

    def _init_from_meta(self, meta: dict, crop: int | None, normalize: bool, seed: int, min_length: int) -> None:
        """Everything but reading the meta (other sequence sources build theirs and share the rest)."""
        self.meta = meta
        self.crop, self.normalize_items, self.seed = crop, normalize, seed
        rec = self.record  # the checked hand-off record: size and statistics are read there
        self.latent_size = rec.latent_size
        stats = rec.stats
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.std = np.maximum(np.asarray(stats["std"], dtype=np.float32), STD_FLOOR)
        self.files = [f for f in self.meta["files"] if f["length"] >= min_length]
        self._shards: dict[int, np.ndarray] = {}
        self._finite: set[int] = set()  # items whose whole sequence was checked for NaN/inf
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    @property
    def record(self):
        """The dataset's checked hand-off record (``latents.record.LatentRecord``)."""
        from audiogen.latents.record import LatentRecord

        return LatentRecord.from_meta(self.meta, self.path)

    @property
    def lengths(self) -> list[int]:
        return [min(f["length"], self.crop) if self.crop else f["length"] for f in self.files]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard(self, k: int) -> np.ndarray:
        if k not in self._shards:  # opened lazily, so DataLoader workers each map their own
            sh = self.meta["shards"][k]
            p = self.path / "shards" / sh["name"]
            _check_regular(p)
            try:
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # missing, truncated or damaged: numpy raises OSError, ValueError, EOFError...
                raise ArtifactError(f"cannot read shard {p} ({type(exc).__name__}: {exc})",
                                    fix="re-encode the dataset") from None
            want = (sh["frames"], self.latent_size)
            if not isinstance(arr, np.ndarray) or arr.shape != want or arr.dtype != np.dtype(self.meta["dtype"]):
                raise ArtifactError(f"shard {p} holds {getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')}, "
                                    f"but meta.json says {self.meta['dtype']} {want}", fix="re-encode the dataset")
            self._shards[k] = arr
        return self._shards[k]

    def sequence(self, i: int) -> np.ndarray:
        """The whole latent sequence of file i as stored, (length, C)."""
        f = self.files[i]
        return self._shard(f["shard"])[f["offset"]: f["offset"] + f["length"]]

    def normalize(self, x):
        """(x - mean) / std over the channel axis of a (C, L) or (B, C, L) array/tensor."""
        mean, std = self._stats_like(x)
        return (x - mean) / std

    def denormalize(self, x):
        mean, std = self._stats_like(x)
        return x * std + mean

    def _stats_like(self, x):
        mean, std = self.mean[:, None], self.std[:, None]
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(mean, dtype=x.dtype, device=x.device),
                    torch.as_tensor(std, dtype=x.dtype, device=x.device))
        return mean, std

    def __getitem__(self, i: int) -> dict:
        seq = self.sequence(i)
        if i not in self._finite and not np.isfinite(seq).all():  # encode refuses these: damaged after writing
            raise ArtifactError(f"latents of {self.files[i].get('source', f'item {i}')} in {self.path} contain NaN "
                                f"or inf", fix="re-encode the dataset (or drop that file)")
        self._finite.add(i)  # checked once: the whole sequence is scanned, not just this epoch's crop
        length = len(seq)
        if self.crop and length > self.crop:
            g = np.random.default_rng([self.seed, self.epoch, i])
            start = int(g.integers(0, length - self.crop + 1))
            seq, length = seq[start: start + self.crop], self.crop
        x = torch.from_numpy(np.array(seq.T, dtype=np.float32, order="C"))  # a copy: shards are read-only maps
        if self.normalize_items:
            x = self.normalize(x)
        return {"latents": x, "length": length, "index": i}


def collate_latents(items: list[dict]) -> dict:
    """Pad to the longest item; mask (B, L) is True on real frames."""
    n, c = len(items), items[0]["latents"].shape[0]
    L = max(it["length"] for it in items)
    x = torch.zeros(n, c, L)
    mask = torch.zeros(n, L, dtype=torch.bool)
    for j, it in enumerate(items):
        x[j, :, : it["length"]] = it["latents"]
        mask[j, : it["length"]] = True
    return {"latents": x, "mask": mask, "lengths": torch.tensor([it["length"] for it in items]),
            "index": torch.tensor([it["index"] for it in items])}
