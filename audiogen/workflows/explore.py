"""``audiogen explore``: latent-space tools from the lab notebooks: interpolations, trajectories and means of
encodings.

Every tool returns named latent sequences (C, L); ``write_latents`` saves each as ``NAME.npy`` (decodable with
``audiogen decode``), decodes it to ``NAME.wav`` with the autoencoder's decoder, and records what was done in
``explore.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
        raise ConfigError(f"interpolation needs at least 2 points, got {steps}", fix="pass --points 2 or more")
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


# ------------------------------------------------------------------------------------------------ the commands
MARKERS = ("explore.json",)  # what marks a folder as explore's output (--overwrite empties only such a folder)


def _autoencoder(run: Path | None, gin_files: Sequence[str], bindings: Sequence[str]):
    from audiogen.latents.decode import decoder_pipeline

    pipe = decoder_pipeline(None, run, gin_files, bindings)
    if pipe.encoder is None:
        raise ConfigError("exploring needs an autoencoder with an encoder", fix="pass --run of an autoencoder")
    return pipe


def _encode(pipe, files: Sequence[Path]) -> list[np.ndarray]:
    from audiogen.latents.encode import encode_files
    from audiogen.settings import audio_settings_for

    return encode_files(pipe.encoder, list(files), audio_settings_for(pipe.encoder, "encoder"))


def _write(items, out: Path, pipe, record: dict, progress: bool) -> list[Path]:
    from audiogen.progress import shown
    from audiogen.settings import audio_settings_for

    with shown(progress):
        return write_latents(items, out, pipe.decoder, audio_settings_for(pipe.decoder, "decoder").sample_rate,
                             record)


def explore_interpolate(a: Path, b: Path, out: Path, run: Path | None = None, gin_files: Sequence[str] = (),
                        bindings: Sequence[str] = (), points: int = 8, slerp: bool = False, overwrite: bool = False,
                        progress: bool = True) -> list[str]:
    """``points`` latent sequences on the way from the encoding of ``a`` to that of ``b``, decoded; returns their
    names."""
    from audiogen.artifacts import check_output

    check_output(out, overwrite, [a, b], runs=[run], markers=MARKERS)
    pipe = _autoencoder(run, gin_files, bindings)
    za, zb = _encode(pipe, [a, b])
    items = interpolate(za, zb, points, spherical=slerp)
    _write(items, out, pipe, {"tool": "interpolate", "a": str(a), "b": str(b), "points": points, "slerp": slerp},
           progress)
    return [n for n, _ in items]


def explore_mean(inputs: Sequence[str], out: Path, run: Path | None = None, gin_files: Sequence[str] = (),
                 bindings: Sequence[str] = (), overwrite: bool = False, progress: bool = True) -> list[Path]:
    """The frame-wise mean of the encodings of the audio ``inputs``, decoded; returns the files averaged."""
    from audiogen.artifacts import check_output
    from audiogen.audio.io import expand_inputs

    files = expand_inputs(list(inputs))
    check_output(out, overwrite, [*inputs, *files], runs=[run], markers=MARKERS)
    pipe = _autoencoder(run, gin_files, bindings)
    _write(mean_encoding(_encode(pipe, files)), out, pipe, {"tool": "mean", "inputs": [str(f) for f in files]},
           progress)
    return files


def explore_trajectory(out: Path, run: Path | None = None, gin_files: Sequence[str] = (),
                       bindings: Sequence[str] = (), shape: str = "circle", dims: Sequence[int] = (0, 1),
                       radius: float = 2.0, around: Path | None = None, stats_from: Path | None = None,
                       seconds: float = 3.0, grid_points: int = 5, overwrite: bool = False,
                       progress: bool = True) -> list[str]:
    """A line, a circle or a grid of points over latent ``dims`` (see ``trajectory``), around the encoding of
    ``around`` or the mean of the latent dataset ``stats_from`` (its std the unit), decoded; returns the names."""
    from audiogen.artifacts import check_output
    from audiogen.settings import audio_settings_for

    check_output(out, overwrite, [around, stats_from], runs=[run], markers=MARKERS)
    pipe = _autoencoder(run, gin_files, bindings)
    sr, C = audio_settings_for(pipe.decoder, "decoder").sample_rate, pipe.latent_size
    mean, scale = np.zeros(C, np.float32), np.ones(C, np.float32)
    if stats_from:
        from audiogen.latents.dataset import read_meta
        from audiogen.latents.record import LatentRecord

        rec = LatentRecord.from_meta(read_meta(stats_from), stats_from)
        rec.check_decoder(pipe.decoder, str(run or "the given config"), sr)  # its statistics are in these units
        if run:
            from audiogen.artifacts import load_checkpoint

            rec.check_made_by(load_checkpoint(run)["path"], fix="pass --stats-from latents encoded with --run "
                              "(or leave it out: origin 0, unit 1)")
        mean, scale = np.asarray(rec.stats["mean"], np.float32), np.asarray(rec.stats["std"], np.float32)
    if around:
        base = _encode(pipe, [around])[0]
    else:
        base = np.repeat(mean[:, None], math.ceil(seconds * sr / pipe.hop), 1)
    items = trajectory(shape, base, list(dims), radius, scale, steps=grid_points)
    _write(items, out, pipe, {"tool": "trajectory", "shape": shape, "dims": list(dims), "radius": radius,
                              "around": str(around) if around else None,
                              "stats_from": str(stats_from) if stats_from else None}, progress)
    return [n for n, _ in items]
