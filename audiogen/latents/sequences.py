"""Sequence data for priors: latent datasets from ``audiogen encode`` or folders of ``.npy`` arrays (T x D).

``open_sequences`` picks the reader from what the folder holds. Both serve dict(latents=(D, L) float32, length,
index) and expose ``meta`` (with per-dimension ``stats``), ``latent_size``, ``lengths``, ``normalize`` and
``denormalize``, so ``audiogen train-prior`` treats them alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiogen.errors import ArtifactError
from audiogen.latents.dataset import LatentDataset, RunningStats


class NpySequences(LatentDataset):
    """Every ``*.npy`` under ``path`` (sorted, recursive), each a (T, D) float array of one sequence.

    Statistics are computed in one streaming pass on open (exact merge per file). Arbitrary data (pen strokes,
    features, latents made elsewhere) enters the same training path as encoded latents.
    """

    def __init__(self, path: str | Path, crop: int | None = None, normalize: bool = False, seed: int = 0,
                 min_length: int = 1):
        self.path = Path(path)
        paths = sorted(self.path.rglob("*.npy")) if self.path.is_dir() else [self.path]
        if not paths:
            raise ArtifactError(f"{self.path} has no .npy files and no meta.json",
                                fix="pass a latent dataset from `audiogen encode` or a folder of (T, D) .npy arrays")
        self._arrays, files, stats, dim = [], [], None, None
        for i, p in enumerate(paths):
            try:
                a = np.load(p, mmap_mode="r", allow_pickle=False)
            except Exception as exc:  # truncated or damaged: numpy raises OSError, ValueError, EOFError...
                raise ArtifactError(f"cannot read {p} ({type(exc).__name__}: {exc})",
                                    fix="save sequences with numpy.save") from None
            # real numbers only: complex would lose its imaginary part, bool/object/str are not sequences of values
            if not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape[1] == 0 or a.dtype.kind not in "iuf":
                raise ArtifactError(f"{p} holds {getattr(a, 'dtype', type(a).__name__)} data of shape "
                                    f"{getattr(a, 'shape', '?')}; a sequence must be a real-valued (T, D) array with "
                                    f"D >= 1", fix="save each sequence as a float array of time x dimensions")
            if dim is None:
                dim, stats = a.shape[1], RunningStats.empty(a.shape[1])
            elif a.shape[1] != dim:
                raise ArtifactError(f"{p} has {a.shape[1]} dimensions but {paths[0]} has {dim}",
                                    fix="every sequence in one dataset needs the same D")
            if not np.isfinite(a).all():
                raise ArtifactError(f"{p} contains NaN or inf values", fix="clean or drop that sequence")
            stats = stats.merge(RunningStats.of(a))
            self._arrays.append(a)
            files.append({"source": str(p), "length": int(a.shape[0]), "index": i})
        meta = {"format": "npy-sequences", "path": str(self.path), "latent_size": dim,
                "stats": stats.to_json(), "files": files, "sample_rate": None, "hop": None}
        self._init_from_meta(meta, crop, normalize, seed, min_length)

    def sequence(self, i: int) -> np.ndarray:
        return self._arrays[self.files[i]["index"]]


def open_sequences(path: str | Path, **kwargs) -> LatentDataset:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path} does not exist", fix="pass a latent dataset folder or a folder of .npy files")
    if (path / "meta.json").exists() or path.with_name(path.name + ".partial").exists():
        return LatentDataset(path, **kwargs)
    return NpySequences(path, **kwargs)


def peek_latent_size(path: str | Path) -> int | None:
    """The latent size of a dataset or .npy folder without opening it all (None when it cannot be told: opening it
    then says why)."""
    from audiogen.latents.dataset import read_meta
    from audiogen.latents.record import LatentRecord

    path = Path(path)
    try:
        if (path / "meta.json").exists():
            return LatentRecord.from_meta(read_meta(path), path).latent_size
        first = next(iter(sorted(path.rglob("*.npy"))), None) if path.is_dir() else path
        a = np.load(first, mmap_mode="r", allow_pickle=False) if first else None
        return int(a.shape[1]) if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] else None
    except (ArtifactError, OSError, ValueError, EOFError):
        return None


def set_fixed_dims(ds: LatentDataset, dims: list[int]) -> None:
    """Leave ``dims`` unnormalised (mean 0, std 1), e.g. binary flags scored by a Bernoulli."""
    for d in dims:
        ds.mean[d], ds.std[d] = 0.0, 1.0

