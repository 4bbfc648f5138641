"""Sample quality as a distance between distributions: the Fréchet distance between Gaussians fitted to features of
generated and held-out data, with the held-out-vs-held-out distance as its floor.

Features: latent windows (``WINDOW`` consecutive frames flattened, non-overlapping, in the dataset's own scale) and
log-mel frames of decoded audio (``audio.mel.log_mel``, hop ``MEL_HOP_SECONDS``, ``N_MELS`` bins). The floor splits
the held-out files in two seeded halves and measures the same distance between them (generated data is compared with
the first half). The split is by file (speaker), and which speakers fall in which half moves a floor measured once by
a factor of several on a few dozen files, so every figure is averaged over ``SPLITS`` re-partitions of the same
held-out crops (distances and floors averaged separately, then divided; the per-split ratios' range is reported);
every distance here is taken between sets of the same number of vectors, because a Fréchet distance estimated from n vectors is biased upwards
(by about tr(S1 + S2) / n for equal Gaussians) and so only compares at equal n.

The matrix square root uses a symmetric eigendecomposition (numpy ``eigh``; scipy is not a dependency):
tr((S1 S2)^1/2) = tr((R S2 R)^1/2) with R = S1^1/2, where R S2 R is symmetric PSD, so both roots are exact up to
rounding (negative eigenvalues from rounding are clipped to 0).
"""

from __future__ import annotations

import numpy as np

WINDOW = 4  # latent frames per window vector
MEL_HOP_SECONDS = 0.016  # log-mel hop (256 samples at 16 kHz; window 4 hops)
N_MELS = 40
SPLITS = 5  # re-partitions of the held-out files the distances and floors are averaged over


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (maximum-likelihood) covariance of the rows of x, float64."""
    x = np.asarray(x, np.float64)
    mu = x.mean(0)
    d = x - mu
    return mu, d.T @ d / len(x)


def frechet_gaussians(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)."""
    r = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    return float(max(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross, 0.0))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of x and of y (n, d)."""
    return frechet_gaussians(*gaussian(x), *gaussian(y))


def latent_windows(seqs, window: int = WINDOW) -> np.ndarray:
    """Non-overlapping windows of ``window`` frames from (C, L) sequences, each flattened time-major: (N, window * C).
    A tail shorter than a window is left out."""
    out = []
    for z in seqs:
        z = np.asarray(z, np.float64)
        m = z.shape[1] // window
        if m:
            out.append(z[:, : m * window].T.reshape(m, window * z.shape[0]))
    c = np.asarray(seqs[0]).shape[0] if len(seqs) else 0
    return np.concatenate(out) if out else np.zeros((0, window * c))


def mel_frames(audio, sample_rate: int, n_mels: int = N_MELS) -> np.ndarray:
    """Log-mel frame vectors (N, n_mels) of a list of 1-D signals (the probe's log-mel, the paper's baseline)."""
    from audiogen.audio.mel import log_mel

    hop = max(1, round(MEL_HOP_SECONDS * sample_rate))
    out = [log_mel(a, sample_rate, hop, n_mels).T for a in audio if len(a)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n_mels))


def compare(generated: np.ndarray, half_a: np.ndarray, half_b: np.ndarray, seed: int = 0) -> dict:
    """Distance generated vs held-out half A, and its floor: half B vs half A (the halves come from disjoint files,
    see ``held_out``), all on n vectors per side, n the smallest count (vectors drawn at random, seeded)."""
    n = min(len(generated), len(half_a), len(half_b))
    dims = int(generated.shape[1]) if generated.ndim == 2 else 0
    if n < 2:
        return {"vectors": n, "dims": dims, "distance": None, "floor": None, "ratio": None,
                "skipped": f"too few vectors ({len(generated)} generated, {len(half_a)} + {len(half_b)} held out)"}
    g = np.random.default_rng(seed)
    gen, a, b = (x[g.permutation(len(x))[:n]] for x in (generated, half_a, half_b))
    dist, floor = frechet_distance(gen, a), frechet_distance(b, a)
    return {"vectors": n, "dims": dims, "distance": dist, "floor": floor,
            "ratio": dist / floor if floor > 0 else None,
            "biased": n < 10 * dims}  # few vectors per dimension: both figures are inflated; compare at equal n only


def compare_splits(generated: np.ndarray, halves: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> dict:
    """``compare`` on each (half A, half B) split: mean distance over mean floor, with the per-split ratios' range."""
    rows = [compare(generated, a, b, seed) for a, b in halves]
    if any(r["distance"] is None for r in rows):
        return next(r for r in rows if r["distance"] is None)
    dist, floor = float(np.mean([r["distance"] for r in rows])), float(np.mean([r["floor"] for r in rows]))
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    return {"vectors": min(r["vectors"] for r in rows), "dims": rows[0]["dims"], "distance": dist, "floor": floor,
            "ratio": dist / floor if floor > 0 else None, "splits": len(rows),
            "ratio_range": [min(ratios), max(ratios)] if ratios else None,
            "biased": any(r["biased"] for r in rows)}


def measure(z_generated, held: dict, audio_generated=None, sample_rate: int | None = None, seed: int = 0,
            window: int = WINDOW) -> dict:
    """Both comparisons against ``held_out``'s splits: latent windows (always) and log-mel frames (when both sides
    have audio). Each crop's features are computed once, however many splits it appears in."""
    splits = held.get("splits") or [{"halves": held["halves"]}]
    cache: dict = {}

    def feats(half: dict, key: str, fn) -> np.ndarray:
        rows = []
        for x in half[key]:
            k = (key, id(x))
            if k not in cache:
                cache[k] = (x, fn([x]))  # x kept alive with its features: ids stay unique
            rows.append(cache[k][1])
        return np.concatenate(rows) if rows else fn([])

    def pairs(key: str, fn):
        return [(feats(sp["halves"][0], key, fn), feats(sp["halves"][1], key, fn)) for sp in splits]

    win = lambda seqs: latent_windows(seqs, window) if len(seqs) else np.zeros((0, 0))  # noqa: E731
    out = {"latent": {**compare_splits(latent_windows(z_generated, window), pairs("latents", win), seed),
                      "window_frames": window}}
    if audio_generated is not None and held["halves"][0]["audio"] is not None and sample_rate:
        mel = lambda audio: mel_frames(audio, sample_rate)  # noqa: E731
        out["log_mel"] = {**compare_splits(mel(audio_generated), pairs("audio", mel), seed),
                          "n_mels": N_MELS, "hop_seconds": MEL_HOP_SECONDS}
    return out


def held_out(ds, n: int, frames: int, seed: int, dec=None, splits: int = SPLITS) -> dict:
    """Two halves of real data, each up to ``n`` crops of ``frames`` frames, from disjoint files (a seeded random
    order, alternating): consecutive frames of one file are nearly alike, so halves that shared files would agree
    far better than independent samples can, and the floor would mean nothing. Each half spreads its crops over as
    many files as it can (crop k of every file before crop k + 1 of any). Raw scale (open ``ds`` uncropped and not
    normalised); with a decoder, the crops' decoded audio too.

    ``splits`` - 1 more splits re-partition the files of those crops (seeded), each half taking every crop of its
    files: the same crops, decoded once, with other speakers on each side ("splits"; "halves" is the first)."""
    import torch

    order = np.random.default_rng(seed).permutation(len(ds)).tolist()
    pool: dict[int, list[np.ndarray]] = {}  # file -> its crops, in crop order
    first = []
    for part in (order[0::2], order[1::2]):
        seqs = {i: ds.sequence(i) for i in part}  # (L, C) memory maps: only the crops are copied
        taken, k = 0, 0
        while taken < n and any(x.shape[0] > k * frames for x in seqs.values()):
            for i in part:
                x = seqs[i][k * frames: (k + 1) * frames]
                if x.shape[0] == frames and taken < n:
                    pool.setdefault(i, []).append(np.array(x.T, dtype=np.float32))
                    taken += 1
            k += 1
        first.append([i for i in part if i in pool])
    audio = {}
    if dec is not None:
        with torch.no_grad():
            audio = {i: [dec(torch.from_numpy(zi)[None])[0, 0].numpy() for zi in pool[i]] for i in pool}
    files = list(pool)
    parts = [first] + [[p[0::2], p[1::2]] for p in
                       (np.random.default_rng([seed, s]).permutation(files).tolist() for s in range(1, splits))]

    def half(ids: list[int]) -> dict:
        # the first split keeps the crop order of the round robin (crop k of every file before crop k + 1 of any)
        depth = max((len(pool[i]) for i in ids), default=0)
        keys = [(i, k) for k in range(depth) for i in ids if k < len(pool[i])]
        return {"latents": [pool[i][k] for i, k in keys], "audio": [audio[i][k] for i, k in keys] if audio else None,
                "files": sorted({ds.files[i].get("source", str(i)) for i in ids})}

    out = [{"halves": [half(a), half(b)]} for a, b in parts]
    return {"halves": out[0]["halves"], "splits": out, "crops": [len(h["latents"]) for h in out[0]["halves"]],
            "frames": frames, "files": [h["files"] for h in out[0]["halves"]]}


def summary(q: dict, against: str = "held-out data") -> str:
    """One line: each distance, its floor and their ratio, with the vector counts."""
    parts = []
    for key, label in (("latent", "latent windows"), ("log_mel", "log-mel")):
        r = q.get(key)
        if r is None:
            continue
        if r["distance"] is None:
            parts.append(f"{label}: {r['skipped']}")
            continue
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "n/a"
        few = ", under 10 per dimension: biased" if r.get("biased") else ""
        spread = (f", {r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}x over {r['splits']} splits"
                  if r.get("ratio_range") and r.get("splits", 1) > 1 else "")
        parts.append(f"{label} {r['distance']:.3g} (floor {r['floor']:.3g}, {ratio}{spread}; {r['vectors']} vectors of "
                     f"{r['dims']}{few})")
    return f"Fréchet distance to {against}: " + "; ".join(parts)
