"""Diagnostic figures: waveforms, spectrograms and latents written as PNG files.

Figures are built with `matplotlib.figure.Figure` and an explicit Agg canvas instead of pyplot,
so nothing here changes the global backend or figure registry of a program that imports us
(a notebook, a training loop with its own plots).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from audiogen.artifacts import atomic_write_bytes

__all__ = ["log_spectrogram", "plot_comparison", "plot_spectrograms", "plot_latents"]

_DB_RANGE = 80.0  # dynamic range shown in spectrograms; quieter bins are clipped to the floor


def _as_numpy(x: Any) -> np.ndarray:
    """Accept numpy arrays and (CPU or GPU, grad or not) torch tensors without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _mono(x: Any) -> np.ndarray:
    """1-D signal; a (channels, time) array is averaged over channels."""
    x = _as_numpy(x)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected a waveform of shape (T,) or (C, T), got shape {x.shape}")
    return x


def log_spectrogram(x: Any, sample_rate: int, n_fft: int = 1024,
                    hop: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude spectrogram in dB (Hann window, frames centred on multiples of `hop`).

    Returns (freqs in Hz, shape (n_fft//2+1,); frame times in s; db of shape (freqs, frames)).
    """
    x = _mono(x)
    # Zero padding (not reflection) so that signals shorter than half a window still work.
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    if len(padded) < n_fft:
        padded = np.pad(padded, (0, n_fft - len(padded)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))
    db = 20.0 * np.log10(spec + 1e-10).T
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    times = np.arange(frames.shape[0]) * hop / sample_rate
    return freqs, times, db


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Render to PNG and move into place atomically (no half-written image on a crash)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return atomic_write_bytes(path, buf.getvalue())


def _show_spectrogram(ax, spec: tuple[np.ndarray, np.ndarray, np.ndarray], vmax: float):
    freqs, times, db = spec
    hop_s = times[1] - times[0] if len(times) > 1 else 0.0
    extent = (times[0] - hop_s / 2, times[-1] + hop_s / 2, freqs[0] / 1000, freqs[-1] / 1000)
    im = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma",
                   vmin=vmax - _DB_RANGE, vmax=vmax, interpolation="nearest")
    ax.set_ylabel("kHz")
    return im


def _check_items(items: list) -> None:
    if not items:
        raise ValueError("nothing to plot: the list of items is empty")


def plot_comparison(path: str | os.PathLike, pairs: list[tuple[str, Any, Any]],
                    sample_rate: int) -> Path:
    """Original vs reconstruction: overlaid waveforms above, the two spectrograms beneath.

    One row group per (title, original, reconstruction); both spectrograms of a pair share one
    colour scale, so a missing band or added noise shows as a difference in colour.
    """
    _check_items(pairs)
    fig = Figure(figsize=(12, 5.0 * len(pairs)), dpi=100, layout="constrained")
    rows = fig.subfigures(len(pairs), 1, squeeze=False)[:, 0]
    for sub, (title, original, recon) in zip(rows, pairs):
        a, b = _mono(original), _mono(recon)
        sub.suptitle(title, fontweight="bold")
        grid = sub.add_gridspec(2, 2, height_ratios=(1, 1.6))
        ax_w = sub.add_subplot(grid[0, :])
        ax_w.plot(np.arange(len(a)) / sample_rate, a, lw=0.6, color="tab:blue", label="original")
        ax_w.plot(np.arange(len(b)) / sample_rate, b, lw=0.6, color="tab:orange", alpha=0.75,
                  label="reconstruction")
        ax_w.set_xlim(0, max(len(a), len(b), 1) / sample_rate)
        ax_w.set_xlabel("time (s)")
        ax_w.legend(loc="upper right", fontsize="small")
        specs = [log_spectrogram(a, sample_rate), log_spectrogram(b, sample_rate)]
        vmax = max(float(s[2].max()) for s in specs)
        axes = [sub.add_subplot(grid[1, 0]), sub.add_subplot(grid[1, 1])]
        for ax, spec, label in zip(axes, specs, ("original", "reconstruction")):
            im = _show_spectrogram(ax, spec, vmax)
            ax.set_title(label, fontsize="medium")
            ax.set_xlabel("time (s)")
        sub.colorbar(im, ax=axes, label="dB", shrink=0.9)
    return _save(fig, path)


def plot_spectrograms(path: str | os.PathLike, items: list[tuple[str, Any]],
                      sample_rate: int) -> Path:
    """A column of spectrograms on one shared colour scale (levels are comparable)."""
    _check_items(items)
    specs = [log_spectrogram(x, sample_rate) for _, x in items]
    vmax = max(float(s[2].max()) for s in specs)
    fig = Figure(figsize=(10, 2.8 * len(items)), dpi=100, layout="constrained")
    axes = fig.subplots(len(items), 1, squeeze=False)[:, 0]
    for ax, (title, _), spec in zip(axes, items, specs):
        im = _show_spectrogram(ax, spec, vmax)
        ax.set_title(title)
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=list(axes), label="dB", shrink=0.9)
    return _save(fig, path)


def _show_latents(fig: Figure, ax, title: str, z: Any, frame_s: float):
    """A (C, L) heatmap, colours symmetric around zero (latents are usually centred); frame l at l * frame_s."""
    z = _as_numpy(z)
    z = z[None, :] if z.ndim == 1 else z
    if z.ndim != 2:
        raise ValueError(f"{title}: expected latents of shape (C, L), got {z.shape}")
    lim = float(np.max(np.abs(z))) if z.size else 1.0
    lim = lim if lim > 0 else 1.0
    im = ax.imshow(z, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   extent=(0, z.shape[1] * frame_s, -0.5, z.shape[0] - 0.5), interpolation="nearest")
    ax.set_title(f"{title}  ({z.shape[0]} x {z.shape[1]})")
    ax.set_ylabel("channel")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=ax, pad=0.01)


def plot_latents(path: str | os.PathLike, items: list[tuple[str, Any]], hop: int,
                 sample_rate: int) -> Path:
    """Heatmaps of (channels, frames) latents; frame l is drawn at time l * hop / sample_rate.

    Colours are symmetric around zero per item (latents are usually centred).
    """
    _check_items(items)
    fig = Figure(figsize=(10, 2.4 * len(items)), dpi=100, layout="constrained")
    axes = fig.subplots(len(items), 1, squeeze=False)[:, 0]
    frame_s = hop / sample_rate
    for ax, (title, z) in zip(axes, items):
        _show_latents(fig, ax, title, z, frame_s)
    axes[-1].set_xlabel("time (s)")
    return _save(fig, path)


def plot_latent_samples(path: str | os.PathLike, items: list[tuple[str, Any, Any]], hop: int | None,
                        sample_rate: int | None) -> Path:
    """One row per sample: its latents (C, L) as a heatmap and, when decoded, the audio's spectrogram."""
    _check_items(items)
    with_audio = any(a is not None for _, _, a in items) and sample_rate
    fig = Figure(figsize=(12 if with_audio else 8, 2.4 * len(items)), dpi=100, layout="constrained")
    axes = fig.subplots(len(items), 2 if with_audio else 1, squeeze=False)
    frame_s = hop / sample_rate if hop and sample_rate else 1.0
    for row, (title, z, audio) in zip(axes, items):
        _show_latents(fig, row[0], f"{title}: latents", z, frame_s)
        row[0].set_xlabel("time (s)" if hop and sample_rate else "frame")
        if with_audio and audio is not None:
            spec = log_spectrogram(audio, sample_rate)
            _show_spectrogram(row[1], spec, float(spec[2].max()))
            row[1].set_title(f"{title}: decoded audio")
    return _save(fig, path)


def plot_strokes(path: str | os.PathLike, items: list[tuple[str, Any]]) -> Path:
    """Pen-stroke sequences (T, 3) of offsets (dx, dy) and pen-up flags, drawn as handwriting."""
    _check_items(items)
    fig = Figure(figsize=(10, 1.8 * len(items)), dpi=100, layout="constrained")
    axes = fig.subplots(len(items), 1, squeeze=False)[:, 0]
    for ax, (title, s) in zip(axes, items):
        s = _as_numpy(s)
        xy = np.cumsum(s[:, :2], axis=0)
        start = 0
        for t in np.flatnonzero(s[:, 2] > 0.5).tolist() + [len(s) - 1]:
            ax.plot(xy[start: t + 1, 0], xy[start: t + 1, 1], "k-", lw=1.2)
            start = t + 1
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
        ax.axis("off")
    return _save(fig, path)
