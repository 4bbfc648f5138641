"""Latent-space probes ("Benchmarking Generative LVMs for Speech", section 3.2): what do the latents capture?

Each labelled file (or segment, with ``start``/``end`` columns in seconds) becomes one vector: the model's
representation averaged over the frames it covers, per level. Two read-outs per representation and label:
- leave-one-out k-nearest-neighbour accuracy on the standardised vectors (no label information used to build
  the space, so the figure is honest for any k);
- the paper's variant, kNN in a low-dimensional LDA subspace, cross-validated: the LDA is fitted without the fold
  being classified (fitting it on all items, as a plain leave-one-out would, leaks the labels into the space);
and a 2-D LDA scatter plot. Log-mel features with the same hop are the baseline the paper compares against.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from audiogen.audio.io import load_audio
from audiogen.audio.mel import log_mel
from audiogen.errors import AudiogenError, ConfigError
from audiogen.progress import bar

RESERVED = ("path", "start", "end")


@dataclass
class Item:
    path: Path
    labels: dict[str, str]
    start: float | None = None  # seconds
    end: float | None = None


@dataclass
class Representation:
    """One vector per item from one source (a model level, or mel features)."""

    name: str
    hop: int
    sample_rate: int
    vectors: list[np.ndarray] = field(default_factory=list)

    def matrix(self) -> np.ndarray:
        return np.stack(self.vectors).astype(np.float64)


# ------------------------------------------------------------------------------------------------------ labels
def read_labels(csv_path: str | Path, labels: list[str] | None = None, where: dict[str, str] | None = None,
                limit: int | None = None) -> tuple[list[Item], list[str]]:
    """Items of a CSV with a ``path`` column (relative paths resolved against the CSV's folder), label columns
    (default: every column except path/start/end and the ``where`` filters), optional ``start``/``end``."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except (OSError, UnicodeDecodeError) as exc:
        raise AudiogenError(f"cannot read labels file {csv_path} ({exc})", path=csv_path) from None
    if "path" not in header:
        raise ConfigError(f"labels file {csv_path} has no 'path' column (columns: {', '.join(header) or 'none'})",
                          fix="give a CSV with a header row: path,<label>[,<label>...][,start,end]")
    where = dict(where or {})
    for col in where:
        if col not in header:
            raise ConfigError(f"--where column {col!r} is not in {csv_path} (columns: {', '.join(header)})")
    labels = list(labels) if labels else [c for c in header if c not in RESERVED and c not in where]
    missing = [c for c in labels if c not in header]
    if missing or not labels:
        raise ConfigError(f"label column(s) {missing or '(none)'} not in {csv_path} (columns: {', '.join(header)})",
                          fix="pass --label with one of the columns")
    items = []
    for line, row in enumerate(rows, start=2):
        if any(row.get(c) != v for c, v in where.items()):
            continue
        p = Path(row["path"]).expanduser()
        p = p if p.is_absolute() else csv_path.parent / p
        try:
            start = float(row["start"]) if row.get("start") not in (None, "") else None
            end = float(row["end"]) if row.get("end") not in (None, "") else None
        except ValueError:
            raise ConfigError(f"{csv_path} line {line}: start/end must be seconds, got {row.get('start')!r}, "
                              f"{row.get('end')!r}") from None
        if start is not None and end is not None and end <= start:
            raise ConfigError(f"{csv_path} line {line}: end {end} <= start {start}")
        items.append(Item(p.resolve(), {c: row[c] for c in labels}, start, end))
    if limit and limit < len(items):  # evenly spaced, so a sorted file still yields every class
        items = [items[int(i)] for i in np.linspace(0, len(items) - 1, limit).round()]
    if len(items) < 3:
        raise ConfigError(f"{csv_path} has {len(items)} usable rows" + (f" after --where {where}" if where else ""),
                          fix="a probe needs at least a few labelled items per class")
    return items, labels


# ---------------------------------------------------------------------------------------------------- features
def time_average(z: np.ndarray, hop: int, sample_rate: int, num_samples: int, start: float | None,
                 end: float | None, path: Path | None = None) -> np.ndarray:
    """Mean over the frames (C, L) whose span overlaps [start, end) (default: the whole file, padding excluded)."""
    a = 0 if start is None else int(start * sample_rate)
    if a >= num_samples:  # no frame to average (the mean would be NaN, reported as a fault of the model)
        raise ConfigError(f"segment start {start} s is not inside the audio ({num_samples / sample_rate:.3f} s long)",
                          path=path, fix="check the start/end columns of the labels file")
    b = num_samples if end is None else min(int(math.ceil(end * sample_rate)), num_samples)
    lo, hi = a // hop, max(a // hop + 1, math.ceil(b / hop))
    return z[:, lo: min(hi, z.shape[1])].mean(1)


# ------------------------------------------------------------------------------------------------ classifiers
def _standardise(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    ref = x if ref is None else ref
    return (x - ref.mean(0)) / np.maximum(ref.std(0), 1e-8)


def _vote(neighbour_labels: torch.Tensor, k: int, num_classes: int) -> torch.Tensor:
    """Majority vote among the first k neighbours (sorted nearest first); ties go to the class seen first.
    A cross-validation training set smaller than k votes with all its items."""
    k = min(k, neighbour_labels.shape[1])
    nb = neighbour_labels[:, :k]
    counts = torch.nn.functional.one_hot(nb, num_classes).sum(1)
    ranks = torch.arange(k).expand_as(nb)
    first = torch.full((nb.shape[0], num_classes), k, dtype=torch.long)
    first.scatter_reduce_(1, nb, ranks, reduce="amin")
    return (counts * (k + 1) + (k - first)).argmax(1)


def knn_leave_one_out(x: np.ndarray, y: np.ndarray, ks: list[int]) -> dict[int, float]:
    """Accuracy of classifying each item by its k nearest other items (Euclidean, standardised features)."""
    xt = torch.from_numpy(_standardise(x))
    d = torch.cdist(xt, xt)
    d.fill_diagonal_(float("inf"))
    order = d.argsort(1)[:, : min(max(ks), len(y) - 1)]  # never the item itself (last, at distance inf)
    yt = torch.from_numpy(y)
    return {k: float((_vote(yt[order], k, int(y.max()) + 1) == yt).double().mean()) for k in ks}


def lda_fit(x: np.ndarray, y: np.ndarray, dims: int, shrinkage: float = 1e-3) -> np.ndarray:
    """Projection (D, dims) maximising between-class over within-class scatter (Fisher LDA), with the
    within-class scatter shrunk towards its mean eigenvalue so that more dimensions than items stay solvable."""
    classes = np.unique(y)
    mu = x.mean(0)
    sw = np.zeros((x.shape[1], x.shape[1]))
    sb = np.zeros_like(sw)
    for c in classes:
        xc = x[y == c]
        mc = xc.mean(0)
        sw += (xc - mc).T @ (xc - mc)
        sb += len(xc) * np.outer(mc - mu, mc - mu)
    sw = (1 - shrinkage) * sw + shrinkage * np.trace(sw) / len(sw) * np.eye(len(sw)) + 1e-9 * np.eye(len(sw))
    chol = np.linalg.cholesky(sw)
    inv = np.linalg.inv(chol)
    vals, vecs = np.linalg.eigh(inv @ sb @ inv.T)
    w = inv.T @ vecs[:, ::-1][:, : min(dims, len(classes) - 1, x.shape[1])]
    return w


def knn_lda_cv(x: np.ndarray, y: np.ndarray, ks: list[int], dims: int = 5, folds: int = 10,
               seed: int = 0) -> dict[int, float]:
    """kNN in a ``dims``-dimensional LDA subspace, ``folds``-fold cross-validated: each item is classified by
    its neighbours among the other folds, in the subspace fitted on those folds only."""
    n = len(y)
    fold = np.random.default_rng(seed).permutation(n) % folds
    correct = {k: 0 for k in ks}
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any():
            continue
        xtr, xte = _standardise(x[tr]), _standardise(x[te], x[tr])
        w = lda_fit(xtr, y[tr], dims)
        d = torch.cdist(torch.from_numpy(xte @ w), torch.from_numpy(xtr @ w))
        order = d.argsort(1)[:, : max(ks)]
        ytr = torch.from_numpy(y[tr])
        for k in ks:
            correct[k] += int((_vote(ytr[order], k, int(y.max()) + 1) == torch.from_numpy(y[te])).sum())
    return {k: correct[k] / n for k in ks}


# --------------------------------------------------------------------------------------------- representations
@torch.no_grad()
def model_representations(pipe, items: list[Item], audio, mel: bool, n_mels: int) -> list[Representation]:
    """Per level: posterior means of a temporal VAE (z1, z2, ...: deterministic, means all the way down), or the
    encoder's levels of an autoencoder or encoder-only run (enc1, ...; coded input when the run has a coding,
    e.g. a CPC pretraining run); plus log-mel features at the level-1 hop."""
    enc = pipe.encoder
    if enc is None:
        raise ConfigError("the checkpoint has no encoder to probe", fix="probe an autoencoder, temporal VAE, "
                          "encoder pretraining run or a latent dataset")
    vae = pipe.latent_model is not None
    prefix = "z" if vae else "enc"
    reps = [Representation(f"{prefix}{i + 1}", h, audio.sample_rate) for i, h in enumerate(enc.level_hops)]
    mel_rep = Representation("mel", enc.hop, audio.sample_rate) if mel else None
    path = None
    for it in bar(items, desc="probe", unit="file"):
        if it.path != path:  # segments of one file (consecutive rows) share its encoding
            path = it.path
            x = load_audio(path, audio.sample_rate, channels=audio.channels, resample=audio.resample)
            xt = torch.from_numpy(x)[None, None]
            if vae:
                levels = [m[0] for m in pipe.score(xt, sample=False)["posterior_mean"]]
            else:
                top = enc.level_hops[-1]
                xt = torch.nn.functional.pad(xt, (0, (-xt.shape[-1]) % top))
                if pipe.coding is not None:
                    xt = pipe.coding.encode(xt).to(xt.dtype)
                levels = [z[0] for z in enc.encode_levels(xt)]
            levels = [z.double().numpy() for z in levels]
            m = log_mel(x, audio.sample_rate, enc.hop, n_mels) if mel_rep is not None else None
        for rep, z in zip(reps, levels):
            rep.vectors.append(time_average(z, rep.hop, audio.sample_rate, len(x), it.start, it.end, path=it.path))
        if mel_rep is not None:
            mel_rep.vectors.append(time_average(m, enc.hop, audio.sample_rate, len(x), it.start, it.end,
                                                path=it.path))
    return reps + ([mel_rep] if mel_rep else [])


def dataset_representations(path: Path, items: list[Item], mel: bool, n_mels: int) -> list[Representation]:
    """The stored latents of a latent dataset, matched to the labels by source path."""
    from audiogen.latents.dataset import LatentDataset

    ds = LatentDataset(path)
    index = {Path(f["source"]).resolve(): i for i, f in enumerate(ds.files)}
    missing = [str(it.path) for it in items if it.path not in index]
    if missing:
        raise ConfigError(f"{len(missing)} labelled files are not in the latent dataset {path} (e.g. {missing[0]})",
                          fix="encode those files, or filter the labels (--where) to the encoded ones")
    rec = ds.record
    if not rec.sample_rate:
        raise ConfigError(f"{path} does not record a sample rate and hop", fix="probe a dataset from `audiogen encode`")
    sr, hop = rec.sample_rate, rec.hop
    rep = Representation("latents", hop, sr)
    mel_rep = Representation("mel", hop, sr) if mel else None
    audio, mel_path = ds.meta.get("audio", {}), None
    for it in bar(items, desc="probe", unit="file"):
        f = ds.files[index[it.path]]
        z = np.asarray(ds.sequence(index[it.path]), np.float64).T
        n = int(f["samples"])
        rep.vectors.append(time_average(z, hop, sr, n, it.start, it.end, path=it.path))
        if mel_rep is not None:
            if it.path != mel_path:  # segments of one file (consecutive rows) share its spectrogram
                mel_path = it.path
                x = load_audio(it.path, sr, channels=audio.get("channels", "downmix"),
                               resample=audio.get("resample", True))
                m = log_mel(x, sr, hop, n_mels)
            mel_rep.vectors.append(time_average(m, hop, sr, len(x), it.start, it.end, path=it.path))
    return [rep] + ([mel_rep] if mel_rep else [])


# ------------------------------------------------------------------------------------------------------ report
def plot_lda(path: Path, x: np.ndarray, y: np.ndarray, names: list[str], title: str) -> Path:
    from matplotlib.figure import Figure

    from audiogen.plots import _save

    xs = _standardise(x)
    w = lda_fit(xs, y, 2)
    p = xs @ w
    if p.shape[1] < 2:
        p = np.concatenate([p, np.zeros((len(p), 2 - p.shape[1]))], 1)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    cmap = "tab10" if len(names) <= 10 else "tab20"
    sc = ax.scatter(p[:, 0], p[:, 1], c=y, cmap=cmap, s=10, alpha=0.8, vmin=0, vmax=max(len(names) - 1, 1))
    if len(names) <= 20:
        handles = [ax.plot([], [], "o", color=sc.cmap(sc.norm(i)), label=n)[0] for i, n in enumerate(names)]
        ax.legend(handles=handles, fontsize=7, loc="best", markerscale=0.8)
    ax.set(title=title, xlabel="LDA 1", ylabel="LDA 2")
    fig.tight_layout()
    return _save(fig, path)


def _file_part(name: str) -> str:
    """A label (a CSV column, someone else's file maybe) as part of a file name: no separators, so a plot never
    lands outside the output folder."""
    return re.sub(r"[^\w.-]", "_", name)


def read_outs(reps: list[Representation], items: list[Item], labels: list[str], ks: list[int], out: Path,
              lda_dims: int = 5, folds: int = 10, plots: bool = True) -> dict:
    """kNN accuracies for every (representation, label), LDA plots; returns the results dict."""
    if max(ks) >= len(items):
        raise ConfigError(f"k={max(ks)} needs more than {max(ks)} items, but there are {len(items)}",
                          fix=f"pass smaller --k values (at most {len(items) - 1}), or label more items")
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"items": len(items), "k": list(ks), "lda_dims": lda_dims, "folds": folds,
                     "representations": {r.name: {"hop": r.hop, "sample_rate": r.sample_rate,
                                                  "dims": int(r.vectors[0].shape[0])} for r in reps},
                     "labels": {}}
    matrices = {}
    for rep in reps:
        matrices[rep.name] = rep.matrix()
        if not np.isfinite(matrices[rep.name]).all():
            raise AudiogenError(f"representation {rep.name} has non-finite values", fix="check the model")
    for label in labels:
        names = sorted({it.labels[label] for it in items}, key=lambda s: (len(s), s))
        if len(names) < 2:
            raise ConfigError(f"label {label!r} has a single class ({names[0]!r}) among the items")
        y = np.array([names.index(it.labels[label]) for it in items])
        counts = np.bincount(y)
        entry = {"classes": len(names), "chance": float(counts.max() / len(y)), "per_representation": {}}
        for rep in reps:
            x = matrices[rep.name]
            entry["per_representation"][rep.name] = {
                "knn": knn_leave_one_out(x, y, ks),
                "lda_knn": knn_lda_cv(x, y, ks, lda_dims, folds) if counts.min() >= 2 else None,
            }
            if plots:
                plot_lda(out / f"lda_{_file_part(label)}_{_file_part(rep.name)}.png", x, y, names, f"{label}: {rep.name} (hop {rep.hop})")
        results["labels"][label] = entry
    return results


def markdown(results: dict) -> str:
    ks = results["k"]
    lines = []
    for label, entry in results["labels"].items():
        lines.append(f"\n{label} ({entry['classes']} classes, {results['items']} items, chance "
                     f"{entry['chance']:.3f})\n")
        head = ["representation", "hop"] + [f"kNN k={k}" for k in ks] + \
            [f"LDA{results['lda_dims']} kNN k={k} ({results['folds']}-fold)" for k in ks]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, r in entry["per_representation"].items():
            lda = [f"{r['lda_knn'][k]:.3f}" if r["lda_knn"] else "-" for k in ks]
            lines.append("| " + " | ".join([name, str(results["representations"][name]["hop"])]
                                           + [f"{r['knn'][k]:.3f}" for k in ks] + lda) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


def probe(labels_csv: Path, out: Path, run: Path | None = None, latents: Path | None = None,
          gin_files: Sequence[str] = (), bindings: Sequence[str] = (), label_cols: Sequence[str] = (),
          where: dict[str, str] | None = None, ks: Sequence[int] = (1, 5, 10), lda_dims: int = 5, folds: int = 10,
          mel: bool = True, n_mels: int = 80, limit: int | None = None, overwrite: bool = False,
          progress: bool = True) -> tuple[dict, str]:
    """``audiogen probe``: the representations of a run (``run``) or of a latent dataset (``latents``) read out
    against the labels; writes probe.json, probe.md and the LDA plots to ``out``; returns the results and the
    table."""
    from audiogen import __version__
    from audiogen.artifacts import atomic_write_json, atomic_write_text, check_output
    from audiogen.progress import shown

    if (run is None) == (latents is None):
        raise ConfigError("probe reads either a run or a latent dataset", fix="pass --run RUN or a latent dataset")
    check_output(out, overwrite, [latents, labels_csv], runs=[run], markers=("probe.json",))
    conditions = dict(where or {})
    items, labels = read_labels(labels_csv, list(label_cols), conditions, limit)
    if latents is not None:
        with shown(progress):
            reps = dataset_representations(latents, items, mel, n_mels)
        made_from = {"latent_dataset": str(Path(latents).resolve())}
    else:
        from audiogen.pipeline import load_pipeline
        from audiogen.settings import audio_settings_for

        pipe, ck = load_pipeline(run, gin_files, bindings)
        with shown(progress):
            reps = model_representations(pipe, items, audio_settings_for(pipe.encoder, "encoder"), mel, n_mels)
        made_from = {"checkpoint": ck["path"], "global_step": ck["audiogen"].get("global_step"),
                     "kind": ck["audiogen"].get("kind")}
    results = read_outs(reps, items, labels, sorted(set(ks)), out, lda_dims, folds)
    results.update(made_from, labels_csv=str(Path(labels_csv).resolve()), where=conditions, audiogen=__version__)
    table = markdown(results)
    atomic_write_json(out / "probe.json", results)
    atomic_write_text(out / "probe.md", table)
    return results, table
