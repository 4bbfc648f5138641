"""Latent-space tools from the lab notebooks: interpolations, trajectories and means of encodings.

Every tool returns named latent sequences (C, L); ``write_latents`` saves each as ``NAME.npy`` (decodable with
``audiogen decode``), decodes it to ``NAME.wav`` with the autoencoder's decoder, and records what was done in
``explore.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from audiogen.artifacts import atomic_write_json, versions
from audiogen.errors import ConfigError

SHAPES = ("line", "circle", "grid")


def crop_common(seqs: list[np.ndarray]) -> list[np.ndarray]:
    """Crop (C, L_i) sequences to their shortest length (the tools combine frame by frame)."""
    n = min(s.shape[-1] for s in seqs)
    return [s[..., :n] for s in seqs]


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, spherical: bool = False) -> list[tuple[str, np.ndarray]]:
    """``steps`` sequences from a to b (both ends included), linear or spherical per frame."""
    if steps < 2:
        raise ConfigError(f"interpolation needs at least 2 steps, got {steps}")
    a, b = crop_common([a, b])
    out = []
    if spherical:  # slerp per frame over the channel vector; falls back to linear for parallel vectors
        na, nb = np.linalg.norm(a, axis=0, keepdims=True), np.linalg.norm(b, axis=0, keepdims=True)
        omega = np.arccos(np.clip((a * b).sum(0, keepdims=True) / np.maximum(na * nb, 1e-12), -1, 1))
        so = np.sin(omega)
        safe = so > 1e-6
    for k in range(steps):
        t = k / (steps - 1)
        if spherical:
            wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, so, 1), 1 - t)
            wb = np.where(safe, np.sin(t * omega) / np.where(safe, so, 1), t)
            z = wa * a + wb * b
        else:
            z = (1 - t) * a + t * b
        out.append((f"interp_{k:02d}", z.astype(np.float32)))
    return out


def mean_encoding(seqs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The frame-wise mean of several encodings (cropped to the shortest)."""
    return [("mean", np.mean(np.stack(crop_common(seqs)), 0).astype(np.float32))]


def trajectory(shape: str, base: np.ndarray, dims: list[int], radius: float, scale: np.ndarray,
               steps: int = 5) -> list[tuple[str, np.ndarray]]:
    """Paths through latent space around ``base`` (C, L), on dimensions ``dims`` in units of ``scale`` (std):
    'line' moves dims[0] from -radius to +radius over time; 'circle' traces a circle of ``radius`` in
    (dims[0], dims[1]) over time; 'grid' gives steps x steps sequences, each holding (dims[0], dims[1]) at one grid
    point for its whole length."""
    if shape not in SHAPES:
        raise ConfigError(f"unknown trajectory shape {shape!r}", fix=f"use one of {', '.join(SHAPES)}")
    C, L = base.shape
    need = 1 if shape == "line" else 2
    if len(dims) < need or any(not 0 <= d < C for d in dims):
        raise ConfigError(f"trajectory {shape!r} needs {need} latent dimension(s) in [0, {C}), got {dims}",
                          fix="pass e.g. --dims 0 --dims 1")
    t = np.linspace(0, 1, L)
    out = []
    if shape == "line":
        z = base.copy()
        z[dims[0]] += (2 * t - 1) * radius * scale[dims[0]]
        out.append((f"line_dim{dims[0]}", z))
    elif shape == "circle":
        z = base.copy()
        z[dims[0]] += radius * scale[dims[0]] * np.cos(2 * math.pi * t)
        z[dims[1]] += radius * scale[dims[1]] * np.sin(2 * math.pi * t)
        out.append((f"circle_dim{dims[0]}_dim{dims[1]}", z))
    else:
        vals = np.linspace(-radius, radius, steps)
        for i, u in enumerate(vals):
            for j, v in enumerate(vals):
                z = base.copy()
                z[dims[0]] += u * scale[dims[0]]
                z[dims[1]] += v * scale[dims[1]]
                out.append((f"grid_{i}_{j}", z))
    return [(n, z.astype(np.float32)) for n, z in out]


def write_latents(items: list[tuple[str, np.ndarray]], out: Path, decoder, sample_rate: int,
                  record: dict) -> list[Path]:
    from audiogen.latents.decode import decode_to_files

    out.mkdir(parents=True, exist_ok=True)
    for name, z in items:
        np.save(out / f"{name}.npy", z)
    written = decode_to_files(decoder, [(f"{n}.wav", z, None) for n, z in items], out, sample_rate) \
        if decoder is not None else []
    atomic_write_json(out / "explore.json", {**record, "outputs": [n for n, _ in items], "created_by": versions()})
    return written
