"""``audiogen quickstart``: the whole encode/decode path on an embedded default, through the workflows of the CLI's
own commands (each printed as the command that does the same, for users to copy).

1. synthesise a speech-like corpus (or take the user's audio);
2. ``audiogen train --gin pipelines/conv_ae.gin`` a small Conv1d autoencoder;
3. ``audiogen encode`` the corpus to a latent dataset;
4. ``audiogen decode`` it back to wavs;
5. compare originals and reconstructions: a PNG, and a summary with SNR and spectral distance.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from audiogen.artifacts import atomic_write_json, atomic_write_text

# Sized for about a minute of training on 2 CPU cores; users train longer with --max-steps.
QUICK_BINDINGS = ["train.max_steps = 600", "train.batch_size = 8", "train.val_every = 200",
                  "train.crop_seconds = 0.5", "train.lr = 2e-3"]


def spectral_distance_db(x: np.ndarray, y: np.ndarray, n_fft: int = 512) -> float:
    """Mean absolute difference of log-magnitude spectrograms (dB), a rough perceptual distance."""
    from audiogen.plots import log_spectrogram

    n = min(len(x), len(y))
    _, _, a = log_spectrogram(x[:n], 16000, n_fft=n_fft, hop=n_fft // 4)
    _, _, b = log_spectrogram(y[:n], 16000, n_fft=n_fft, hop=n_fft // 4)
    floor = max(a.max(), b.max()) - 80  # ignore differences far below the signal
    return float(np.abs(np.maximum(a, floor) - np.maximum(b, floor)).mean())


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    err = np.sum((x[:n] - y[:n]) ** 2)
    return float(10 * np.log10(np.sum(x[:n] ** 2) / max(err, 1e-12)))


def _shown(echo: Callable[[str], None], args: list) -> None:
    echo("$ audiogen " + shlex.join(map(str, args)))


def quickstart(data: Path | None, out: Path, max_steps: int | None = None, bindings: Sequence[str] = (),
               echo: Callable[[str], None] = print, progress: bool = False) -> dict:
    """Train, encode, decode and compare under ``out``; returns the summary (also summary.json and summary.md).
    Re-running on the same ``out`` resumes the training run and writes the rest again."""
    from audiogen.audio.io import load_audio
    from audiogen.latents.dataset import read_meta
    from audiogen.latents.decode import common_root
    from audiogen.latents.record import LatentRecord
    from audiogen.plots import plot_comparison
    from audiogen.synth import write_corpus
    from audiogen.workflows.decode import decode
    from audiogen.workflows.encode import encode
    from audiogen.workflows.train import train

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        corpus = out / "corpus"
        write_corpus(corpus, n_speakers=4, utterances_per_speaker=6, seed=0)
        echo(f"synthesised a speech-like corpus (4 speakers x 6 utterances) in {corpus}")
        train_data, valid_data, all_data = [corpus / "train.txt"], [corpus / "valid.txt"], [corpus]
    else:
        train_data, valid_data, all_data = [data], [], [data]

    train_binds = list(QUICK_BINDINGS)
    if max_steps is not None:
        train_binds.append(f"train.max_steps = {max_steps}")
    train_binds += bindings
    run = out / "run"
    gin_files = ["pipelines/conv_ae.gin"]
    quiet = [] if progress else ["--no-progress"]  # training is the long part: its bar goes to stderr
    _shown(echo, ["train", "--gin", *gin_files, *[a for b in train_binds for a in ("--bind", b)], *train_data,
                  *[a for d in valid_data for a in ("--valid", d)], "-o", run, *quiet])
    final = train([str(d) for d in train_data], run, gin_files, train_binds,
                  [str(d) for d in valid_data] or None, progress=progress)
    echo(f"wrote {final}")
    t_train = time.perf_counter()

    latents, decoded = out / "latents", out / "decoded"
    _shown(echo, ["encode", "--run", run / "model.ckpt", *all_data, "-o", latents, "--overwrite", *quiet])
    enc = encode([str(d) for d in all_data], latents, run / "model.ckpt", overwrite=True, progress=progress)
    echo(f"encoded {enc.meta['num_files']} files into {latents}")
    _shown(echo, ["decode", latents, "-o", decoded, "--overwrite", *quiet])
    echo(f"wrote {len(decode([str(latents)], decoded, overwrite=True, progress=progress))} wav files to {decoded}")

    meta = read_meta(latents)
    rec = LatentRecord.from_meta(meta, latents)
    sr = rec.sample_rate
    rows, pairs = [], []
    sources = [Path(f["source"]) for f in meta["files"]]
    root = common_root([str(p) for p in sources])  # where decode put each file, relative to its source
    for src in sources:
        x = load_audio(src, sr)
        y = load_audio(decoded / src.relative_to(root).with_suffix(".wav"), sr)
        rows.append({"file": src.name, "snr_db": snr_db(x, y), "spectral_distance_db": spectral_distance_db(x, y)})
        if len(pairs) < 3:
            pairs.append((src.name, x, y[: len(x)]))
    png = plot_comparison(out / "comparison.png", pairs, sr)
    summary = {
        "files": len(rows), "audio_seconds": meta["total_seconds"], "sample_rate": sr, "hop": rec.hop,
        "latent_size": rec.latent_size, "frame_rate": rec.frame_rate,
        "mean_snr_db": float(np.mean([r["snr_db"] for r in rows])),
        "mean_spectral_distance_db": float(np.mean([r["spectral_distance_db"] for r in rows])),
        "train_seconds": round(t_train - t0, 1), "total_seconds": round(time.perf_counter() - t0, 1),
        "outputs": {"checkpoint": str(run / "model.ckpt"), "latents": str(latents), "decoded": str(decoded),
                    "comparison": str(png)},
        "per_file": rows,
    }
    atomic_write_json(out / "summary.json", summary)
    md = ["# audiogen quickstart", "",
          f"- {summary['files']} files, {summary['audio_seconds']:.1f} s of audio at {sr} Hz",
          f"- latents: {rec.latent_size} dims at {rec.frame_rate:.1f} frames/s (hop {rec.hop})",
          f"- reconstruction: mean SNR {summary['mean_snr_db']:.2f} dB, mean log-spectral distance "
          f"{summary['mean_spectral_distance_db']:.2f} dB",
          f"- time: {summary['total_seconds']} s (training {summary['train_seconds']} s)", "",
          f"Compare originals and reconstructions in {png}."]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    echo("\n".join(md[2:]))
    return summary
