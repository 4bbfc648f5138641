"""Sample quality as a distance between distributions: the Fréchet distance between Gaussians fitted to features of
generated and held-out data, with the held-out-vs-held-out distance as its floor.

Features: latent windows (``WINDOW`` consecutive frames flattened, non-overlapping, in the dataset's own scale) and
log-mel frames of decoded audio (``probe.log_mel``, hop ``MEL_HOP_SECONDS``, ``N_MELS`` bins). The floor splits
the held-out vectors in two seeded halves and measures the same distance between them; every distance here is taken
between sets of the same number of vectors, because a Fréchet distance estimated from n vectors is biased upwards
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
    from audiogen.probe import log_mel

    hop = max(1, round(MEL_HOP_SECONDS * sample_rate))
    out = [log_mel(a, sample_rate, hop, n_mels).T for a in audio if len(a)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n_mels))


def compare(generated: np.ndarray, held_out: np.ndarray, seed: int = 0) -> dict:
    """Distance generated vs held-out, and its floor held-out vs held-out, all on n vectors per side: n is the
    smaller of the generated count and half the held-out count (vectors drawn at random, seeded)."""
    n = min(len(generated), len(held_out) // 2)
    dims = int(generated.shape[1]) if generated.ndim == 2 else 0
    if n < 2:
        return {"vectors": n, "dims": dims, "distance": None, "floor": None, "ratio": None,
                "skipped": f"too few vectors ({len(generated)} generated, {len(held_out)} held out)"}
    g = np.random.default_rng(seed)
    gen = generated[g.permutation(len(generated))[:n]]
    perm = g.permutation(len(held_out))
    a, b = held_out[perm[:n]], held_out[perm[n: 2 * n]]
    dist, floor = frechet_distance(gen, a), frechet_distance(b, a)
    return {"vectors": n, "dims": dims, "distance": dist, "floor": floor,
            "ratio": dist / floor if floor > 0 else None,
            "biased": n < 10 * dims}  # few vectors per dimension: both figures are inflated; compare at equal n only


def measure(z_generated, z_held, audio_generated=None, audio_held=None, sample_rate: int | None = None,
            seed: int = 0, window: int = WINDOW) -> dict:
    """Both comparisons: latent windows (always) and log-mel frames (when both sides have audio)."""
    out = {"latent": {**compare(latent_windows(z_generated, window), latent_windows(z_held, window), seed),
                      "window_frames": window}}
    if audio_generated is not None and audio_held is not None and sample_rate:
        out["log_mel"] = {**compare(mel_frames(audio_generated, sample_rate), mel_frames(audio_held, sample_rate),
                                    seed), "n_mels": N_MELS, "hop_seconds": MEL_HOP_SECONDS}
    return out


def held_out(ds, frames: int, seed: int, dec=None) -> dict:
    """About ``frames`` latent frames of a dataset (opened uncropped, raw scale): whole files in a seeded random
    order, the last one cut, so that the cost is bounded and a few long files give as many vectors as many short
    ones. Their latents (C, L) and, with a decoder, their decoded audio."""
    import torch

    z, files = [], []
    for i in np.random.default_rng(seed).permutation(len(ds)).tolist():
        if frames <= 0:
            break
        x = ds[i]["latents"][:, :frames].numpy()
        z.append(x)
        files.append(ds.files[i].get("source", str(i)) if isinstance(ds.files[i], dict) else str(ds.files[i]))
        frames -= x.shape[1]
    audio = None
    if dec is not None:
        with torch.no_grad():
            audio = [dec(torch.from_numpy(zi)[None])[0, 0].numpy() for zi in z]
    return {"latents": z, "audio": audio, "files": files, "frames": int(sum(x.shape[1] for x in z))}


def summary(q: dict) -> str:
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
        parts.append(f"{label} {r['distance']:.3g} (floor {r['floor']:.3g}, {ratio}; {r['vectors']} vectors of "
                     f"{r['dims']})")
    return "Fréchet distance to held-out data: " + "; ".join(parts)
