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

from audiogen.artifacts import atomic_write_json, atomic_write_text, check_output

# Sized for about three minutes in all on 2 idle CPU cores; users train longer with --max-steps. At a fixed budget,
# measured on this corpus (log-spectral distance): more, smaller steps beat fewer large ones (batch 4 x 1800: 3.57 dB,
# batch 8 x 900: 3.86 dB), a cosine decay from a high rate beats a constant one (1500 steps: 3.52 vs 4.27 dB), the
# waveform L1 term, which pulls towards a phase the spectral terms ignore, costs formant detail early on, and PQMF
# sub-band coders (BANDS=2, 8), though 1.7-2.5x cheaper per step, reach 3.83-4.13 dB in the same time against 3.72.
QUICK_BINDINGS = ["train.max_steps = 1300", "train.batch_size = 4", "train.val_every = 400",
                  "train.crop_seconds = 0.5", "train.lr = 4e-3", "train.lr_schedule = 'cosine'",
                  "spectral_loss.wave_weight = 0.0"]
# what marks a folder as a quickstart's (resumed, or emptied by --overwrite)
MARKERS = ("summary.json", "run", "corpus", "latents", "decoded")


def spectral_distance_db(x: np.ndarray, y: np.ndarray, sample_rate: int = 16000, n_fft: int = 512) -> float:
    """Log-spectral distance: mean absolute difference of log-magnitude spectrograms (dB; 32 ms windows at 16 kHz),
    with differences more than 80 dB below the loudest bin ignored. 0 is identical; it ignores phase."""
    from audiogen.plots import log_spectrogram

    n = min(len(x), len(y))
    _, _, a = log_spectrogram(x[:n], sample_rate, n_fft=n_fft, hop=n_fft // 4)
    _, _, b = log_spectrogram(y[:n], sample_rate, n_fft=n_fft, hop=n_fft // 4)
    floor = max(a.max(), b.max()) - 80  # ignore differences far below the signal
    return float(np.abs(np.maximum(a, floor) - np.maximum(b, floor)).mean())


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    err = np.sum((x[:n] - y[:n]) ** 2)
    return float(10 * np.log10(np.sum(x[:n] ** 2) / max(err, 1e-12)))


def anchors(x: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Familiar degradations of the same audio, scored like the reconstructions so their figures read on one scale:
    8-bit mu-law (telephone quantisation) and band-limiting to 4 kHz (telephone bandwidth)."""
    import torch

    from audiogen.audio.coding import MuLaw
    from audiogen.audio.io import resample

    mu = MuLaw(8)
    out = {"8-bit mu-law": mu.dequantize(mu.quantize(torch.from_numpy(x))).numpy()}
    if sample_rate > 8000:
        out["4 kHz band"] = resample(resample(x, sample_rate, 8000), 8000, sample_rate)[: len(x)]
    return out


def _shown(echo: Callable[[str], None], args: list) -> None:
    echo("$ audiogen " + shlex.join(map(str, args)))


def quickstart(data: Path | None, out: Path, max_steps: int | None = None, bindings: Sequence[str] = (),
               echo: Callable[[str], None] = print, progress: bool = False, overwrite: bool = False) -> dict:
    """Train, encode, decode and compare under ``out``; returns the summary (also summary.json and summary.md).
    Re-running on the same ``out`` resumes the training run and writes the rest again; ``overwrite`` empties ``out``
    (a quickstart's folder only) and starts over at step 0."""
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
    # the audio read is never inside out, nor out inside it (decoded/ would be read back as input on a re-run)
    check_output(out, overwrite, [data], markers=MARKERS, what="quickstart folder", resumes=True)
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
                  *[a for d in valid_data for a in ("--valid", d)], "-o", run, *(["--overwrite"] if overwrite else []),
                  *quiet])
    final = train([str(d) for d in train_data], run, gin_files, train_binds,
                  [str(d) for d in valid_data] or None, progress=progress, overwrite=overwrite)
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
    rows, pairs, anchor_rows = [], [], {}
    sources = [Path(f["source"]) for f in meta["files"]]
    root = common_root([str(p) for p in sources])  # where decode put each file, relative to its source
    for src in sources:
        x = load_audio(src, sr)
        y = load_audio(decoded / src.relative_to(root).with_suffix(".wav"), sr)
        rows.append({"file": src.name, "snr_db": snr_db(x, y), "spectral_distance_db": spectral_distance_db(x, y, sr)})
        for name, z in anchors(x, sr).items():
            anchor_rows.setdefault(name, []).append((snr_db(x, z), spectral_distance_db(x, z, sr)))
        if len(pairs) < 3:
            pairs.append((src.name, x, y[: len(x)]))
    png = plot_comparison(out / "comparison.png", pairs, sr)
    summary = {
        "files": len(rows), "audio_seconds": meta["total_seconds"], "sample_rate": sr, "hop": rec.hop,
        "latent_size": rec.latent_size, "frame_rate": rec.frame_rate,
        "mean_snr_db": float(np.mean([r["snr_db"] for r in rows])),
        "mean_spectral_distance_db": float(np.mean([r["spectral_distance_db"] for r in rows])),
        "anchors": {k: {"mean_snr_db": float(np.mean([a for a, _ in v])),
                        "mean_spectral_distance_db": float(np.mean([b for _, b in v]))} for k, v in anchor_rows.items()},
        "train_seconds": round(t_train - t0, 1), "total_seconds": round(time.perf_counter() - t0, 1),
        "outputs": {"checkpoint": str(run / "model.ckpt"), "latents": str(latents), "decoded": str(decoded),
                    "comparison": str(png)},
        "per_file": rows,
    }
    atomic_write_json(out / "summary.json", summary)
    anchor_text = "; ".join(f"{k}: {v['mean_spectral_distance_db']:.2f} dB (SNR {v['mean_snr_db']:.1f} dB)"
                            for k, v in summary["anchors"].items())
    md = ["# audiogen quickstart", "",
          f"- {summary['files']} files, {summary['audio_seconds']:.1f} s of audio at {sr} Hz",
          f"- latents: {rec.latent_size} dims at {rec.frame_rate:.1f} frames/s (hop {rec.hop})",
          f"- reconstruction: mean log-spectral distance {summary['mean_spectral_distance_db']:.2f} dB, "
          f"mean SNR {summary['mean_snr_db']:.2f} dB",
          f"- the same files degraded on purpose, scored the same way: {anchor_text}",
          f"- time: {summary['total_seconds']} s (training {summary['train_seconds']} s)", "",
          f"Compare originals and reconstructions in {png}.", "",
          "## What the figures mean", "",
          "- Log-spectral distance: the mean absolute difference, in dB, between the log-magnitude spectrograms of the",
          "  original and its reconstruction (32 ms windows; differences more than 80 dB below the loudest bin are",
          "  ignored): timbre, formants, harmonics and noise, not phase. 0 is identical. The degraded copies above",
          "  are the scale on this audio: below them, a reconstruction is closer to the original by this measure",
          "  than telephone-quality audio is. Quiet passages count as much as loud ones, so a faint hiss in the",
          "  pauses costs as much as a smeared formant.",
          "- SNR: waveform signal-to-noise ratio. The quickstart's model is trained on spectral magnitudes, not",
          "  phase, so its SNR stays low (-5 to 5 dB) even when it sounds right; it matters for models scored on",
          "  waveforms (likelihoods, `audiogen evaluate`).",
          "- Longer training improves both: `audiogen quickstart --max-steps 3000`, or train `pipelines/conv_ae.gin`",
          "  with `audiogen train`."]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    echo("\n".join(md[2:9]))
    return summary
