"""``audiogen sample``: audio from a temporal VAE, or latents from a prior, de-normalised, decoded, and checked.

The prior's checkpoint records its dataset's meta (which autoencoder made the latents, sample rate, hop) and the
statistics it was trained with, so sampling needs nothing else. Diagnostics catch the classic silent-decode
failure (generated latents on another scale than the encoder's) by comparing generated latents with the
dataset's statistics and the decoded level with decoded dataset latents.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiogen import quality
from audiogen.artifacts import atomic_write_json, versions
from audiogen.progress import bar

log = logging.getLogger("audiogen")
SILENT_DBFS = -50.0  # frames quieter than this (RMS, dBFS) count as near-silent
REFERENCE_FILES = 8  # at least this many dataset files are decoded for the reference level


def _db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-10))


def latent_diagnostics(z: np.ndarray, stats: dict) -> dict:
    """z (n, C, L) generated latents vs the dataset's per-dimension statistics (from its meta)."""
    flat = z.transpose(1, 0, 2).reshape(z.shape[1], -1)
    mean, std = flat.mean(1), flat.std(1)
    dmean, dstd = np.asarray(stats["mean"]), np.maximum(np.asarray(stats["std"]), 1e-8)
    lo, hi = np.asarray(stats["min"]), np.asarray(stats["max"])
    outside = ((flat < lo[:, None]) | (flat > hi[:, None])).mean(1)
    # a sequence that leaves the dataset's range by more than its width has run away (an autoregressive prior's
    # sampled chain diverging): a few of them set the std ratios of all
    span = (hi - lo)[None, :, None]
    runaway = ((z < lo[None, :, None] - span) | (z > hi[None, :, None] + span)).any((1, 2))
    return {"runaway_sequences": int(runaway.sum()), "sequences": int(z.shape[0]),
            "max_abs_in_std": float(np.max(np.abs(flat - dmean[:, None]) / dstd[:, None])),"generated_mean": mean.tolist(), "generated_std": std.tolist(),
            "dataset_mean": dmean.tolist(), "dataset_std": dstd.tolist(),
            "mean_shift_in_std": ((mean - dmean) / dstd).tolist(), "std_ratio": (std / dstd).tolist(),
            "fraction_outside_dataset_range": outside.tolist(),
            "max_abs_std_error": float(np.max(np.abs(std / dstd - 1))),
            "max_abs_mean_shift_in_std": float(np.max(np.abs((mean - dmean) / dstd)))}


def audio_diagnostics(audio: list[np.ndarray], sample_rate: int, frame_seconds: float = 0.02) -> dict:
    n = max(1, int(frame_seconds * sample_rate))
    rms, silent, total = [], 0, 0
    for a in audio:
        rms.append(float(np.sqrt(np.mean(a.astype(np.float64) ** 2))))
        m = len(a) // n
        if m:
            fr = np.sqrt(np.mean(a[: m * n].astype(np.float64).reshape(m, n) ** 2, 1))
            silent += int((20 * np.log10(np.maximum(fr, 1e-10)) < SILENT_DBFS).sum())
            total += m
    overall = float(np.sqrt(np.mean([r * r for r in rms])))
    return {"rms": rms, "rms_dbfs": _db(overall), "near_silent_frame_fraction": silent / max(total, 1)}


def warnings_for(diag: dict) -> list[str]:
    out = []
    lat = diag["latents"]
    if 0 < lat.get("runaway_sequences", 0) < lat["sequences"] / 2:  # a few: diverging chains, not a scale mistake
        out.append(f"{lat['runaway_sequences']} of {lat['sequences']} generated sequences run away (values up to "
                   f"{lat['max_abs_in_std']:.0f} dataset std from its mean, beyond twice its range): the prior's "
                   f"sampled chain diverges, and they dominate the std ratios and distances; sample at a lower "
                   f"--temperature, train longer, or use another prior")
    elif lat["max_abs_std_error"] > 0.5 or lat["max_abs_mean_shift_in_std"] > 0.5:
        out.append(f"generated latents are off the dataset's scale (std ratio up to "
                   f"{max(lat['std_ratio'], key=lambda r: abs(r - 1)):.2f}, mean shift up to "
                   f"{lat['max_abs_mean_shift_in_std']:.2f} std): was the prior trained on normalised latents and "
                   f"are samples de-normalised? (train_prior.normalize)")
    if max(lat["fraction_outside_dataset_range"]) > 0.05:
        out.append(f"{max(lat['fraction_outside_dataset_range']):.0%} of some dimension's generated values fall "
                   f"outside the dataset's range")
    if "audio" in diag and "reference_audio" in diag:
        gap = diag["audio"]["rms_dbfs"] - diag["reference_audio"]["rms_dbfs"]
        if gap < -6:
            out.append(f"decoded samples are {-gap:.1f} dB quieter than decoded dataset latents "
                       f"({diag['audio']['near_silent_frame_fraction']:.0%} near-silent frames): the silent-decode "
                       f"failure; check the latent scale above")
        elif gap > 6:
            out.append(f"decoded samples are {gap:.1f} dB louder than decoded dataset latents")
    return out


def _dataset(rec, frames: int | None, seed: int, what: str):
    """The prior's dataset (latents or .npy sequences), cropped to ``frames`` (None: whole files; raw scale); None when
    it is gone or was re-encoded since."""
    from audiogen.errors import ConfigError
    from audiogen.latents.sequences import open_sequences

    path = Path(rec.dataset_path or "")
    if not rec.dataset_path or not path.exists():
        return None
    ds = open_sequences(path, crop=frames, seed=seed)  # a latent dataset or a folder of .npy sequences
    try:
        rec.check_same_kind(ds.record, fix="")
    except ConfigError as exc:  # re-encoded at the same path since: it says nothing about these samples
        log.warning("%s: %s", what, str(exc).splitlines()[0])
        return None
    return ds


def generate(prior, rec, n: int, frames: int, seed: int, temperature: float = 1.0) -> np.ndarray:
    """n latent sequences (n, C, frames) from a prior, seeded, in the dataset's own scale (de-normalised);
    ``temperature`` scales the prior's noise draws, for priors whose ``sample`` takes one."""
    torch.manual_seed(seed)
    if temperature == 1.0:
        z = prior.sample(n, frames)
    elif "temperature" in inspect.signature(prior.sample).parameters:
        z = prior.sample(n, frames, temperature=temperature)
    else:
        from audiogen.errors import ConfigError

        raise ConfigError(f"--temperature {temperature:g}: {type(prior).__name__} has no sampling temperature "
                          "(priors.sequence has: VRNN, SRNN, CW-VAE, LSTM, WaveNet)",
                          fix="drop --temperature for this prior")
    norm = rec.normalization
    if norm is not None:  # the prior learned normalised latents: back to the decoder's scale
        z = z * torch.tensor(norm["std"])[:, None] + torch.tensor(norm["mean"])[:, None]
    return z.float().numpy()


def reference_audio(dec, rec, frames: int, seed: int, count: int) -> dict | None:
    """The level to expect: decoded dataset latents of the same length, from a seeded random subset of the dataset's
    files (the first files of a corpus may all be quiet). None when the dataset is gone."""
    ds = _dataset(rec, frames, seed, "no reference level")
    if ds is None:
        return None
    picks = sorted(np.random.default_rng(seed).choice(len(ds), min(count, len(ds)), replace=False).tolist())
    ref = [dec(ds[i]["latents"][None])[0, 0].numpy() for i in picks]
    return {**audio_diagnostics(ref, rec.sample_rate),
            "reference": f"{len(picks)} of the dataset's {len(ds)} files drawn at random (seed {seed}), crops of "
                         f"{frames} frames, decoded", "files": [ds.files[i].get("source") for i in picks]}


def sample_prior(ck: dict, out: Path, n: int, seconds: float | None, frames: int | None, seed: int,
                 gin_files=(), bindings=(), decode: bool = True, decoder_ckpt=None, temperature: float = 1.0) -> dict:
    from audiogen.audio.io import save_audio
    from audiogen.errors import ConfigError
    from audiogen.latents.record import LatentRecord
    from audiogen.pipeline import load_pipeline
    from audiogen.plots import plot_latent_samples, plot_strokes

    ckpt_path = ck["path"]
    rec = LatentRecord.from_prior(ck)  # what the prior was trained on: size, rate, hop, statistics, autoencoder
    sr, hop = rec.sample_rate, rec.hop
    if frames is None:
        if seconds is None:
            raise ConfigError("give a length", fix="pass --seconds S or --frames N")
        frames = rec.frames(seconds)
    dec = None
    if decode and sr and (rec.decodable or decoder_ckpt):
        from audiogen.latents.decode import decoder_pipeline

        # checked against the record before the prior runs: a decoder of another latent size is a clear error
        dec = decoder_pipeline(rec, decoder_ckpt, option="--decoder-run").decoder
    pipe, _ = load_pipeline(ck, gin_files, bindings)
    prior = pipe.prior
    rec.check_latent_size(prior.latent_size, f"the prior of {ckpt_path}", "retrain the prior on this dataset")
    z = generate(prior, rec, n, frames, seed, temperature)
    norm = rec.normalization
    out.mkdir(parents=True, exist_ok=True)
    names = [f"sample_{i:03d}" for i in range(n)]
    for name, zi in zip(names, z):
        np.save(out / f"{name}.npy", zi)  # (C, L): `audiogen decode` reads these
    diag = {"latents": latent_diagnostics(z, rec.stats)}
    audio = [None] * n
    if dec is not None:
        with torch.no_grad():
            audio = [dec(torch.from_numpy(zi)[None])[0, 0].numpy() for zi in bar(z, desc="decode", unit="sample")]
            for name, a in zip(names, audio):
                save_audio(out / f"{name}.wav", a, sr)
            diag["audio"] = audio_diagnostics(audio, sr)
            ref = reference_audio(dec, rec, frames, seed, max(n, REFERENCE_FILES))
            if ref is not None:
                diag["reference_audio"] = ref
    elif decode and sr:
        log.warning("the prior's dataset does not name its autoencoder: wrote latents only")
    ds = _dataset(rec, None, seed, "no Fréchet distance")
    if ds is not None:  # two halves of as many dataset crops as samples, from disjoint files: distance and floor
        held = quality.held_out(ds, n, frames, seed, dec)
        diag["quality"] = {**quality.measure(z, held, audio if dec is not None else None, sr, seed),
                           "compared_with": f"{n} samples of {frames} frames vs two halves of {held['crops']} crops "
                           f"of {frames} frames from disjoint files of the prior's dataset {rec.dataset_path} (drawn at "
                           f"random, seed {seed}; averaged over {len(held['splits'])} splits of those files)", "files": held["files"]}
    items = [(nm, zi, a) for nm, zi, a in zip(names, z, audio)][:8]
    plot_latent_samples(out / "samples.png", items, hop, sr)
    if z.shape[1] == 3 and set(getattr(prior, "fixed_dims", [])) == {2}:  # pen strokes (dx, dy, pen-up)
        plot_strokes(out / "strokes.png", [(nm, zi.T) for nm, zi in zip(names, z)][:8])
    diag["warnings"] = (warnings_for(diag) if "latents" in diag else []) + getattr(prior, "config_warnings", list)()
    for w in diag["warnings"]:
        log.warning("%s", w)
    record = {"kind": "prior samples", "checkpoint": str(ckpt_path), "global_step": ck["audiogen"].get("global_step"),
              "components": ck["audiogen"].get("components"), "dataset": rec.dataset_path,
              "normalized": norm is not None, "n": n, "frames": frames, "seed": seed, "temperature": temperature,
              "sample_rate": sr, "hop": hop,
              "operative_config": ck["audiogen"]["operative_config"], "files": names, "diagnostics": diag,
              "created_by": versions()}
    atomic_write_json(out / "samples.json", record)
    return record


def write_samples(pipe, ckpt: dict, out: Path, n: int, seconds: float, sample_rate: int, seed: int,
                  mean: bool = False) -> list[Path]:
    from audiogen.audio.io import save_audio
    from audiogen.errors import ConfigError
    from audiogen.plots import plot_spectrograms

    if pipe.latent_model is None:
        raise ConfigError("this checkpoint has no latent model to sample from",
                          fix="sample from a temporal VAE checkpoint (e.g. trained with pipelines/cwvae_l2_speech.gin)")
    torch.manual_seed(seed)
    audio = pipe.generate(n, int(seconds * sample_rate), mean=mean)[:, 0].numpy()
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_audio(out / f"sample_{i:03d}.wav", a, sample_rate) for i, a in enumerate(audio)]
    plot_spectrograms(out / "samples.png", [(p.name, a) for p, a in zip(paths, audio)], sample_rate)
    atomic_write_json(out / "samples.json", {
        "kind": "samples", "checkpoint": ckpt["path"], "global_step": ckpt["audiogen"].get("global_step"),
        "components": ckpt["audiogen"].get("components"), "operative_config": ckpt["audiogen"]["operative_config"],
        "n": n, "seconds": seconds, "sample_rate": sample_rate, "seed": seed,
        "output": "distribution mean" if mean else "sampled from the output distribution",
        "files": [p.name for p in paths], "created_by": versions(),
    })
    return paths


@dataclass
class Samples:
    out: Path
    files: int
    frames: int | None = None  # per prior sample (None: a temporal VAE's audio samples)
    quality: dict | None = None  # Fréchet distances of a prior's samples to its dataset


def sample(run: Path, out: Path, num: int = 4, seconds: float = 3.0, frames: int | None = None, seed: int = 0,
           mean: bool = False, decoder_run: Path | None = None, gin_files: Sequence[str] = (),
           bindings: Sequence[str] = (), overwrite: bool = False, progress: bool = True,
           temperature: float = 1.0) -> Samples:
    """``audiogen sample``: unconditional samples of a temporal VAE, or of a prior (decoded with its dataset's
    autoencoder, or ``decoder_run``), with samples.png and samples.json in ``out``."""
    from audiogen.artifacts import check_output, load_checkpoint
    from audiogen.pipeline import load_pipeline
    from audiogen.progress import shown
    from audiogen.settings import audio_settings

    check_output(out, overwrite, runs=[run, decoder_run], markers=("samples.json",))
    ck = load_checkpoint(run)  # read once: it says which kind of sampling applies
    if ck["audiogen"].get("kind") == "prior":
        with shown(progress):
            rec = sample_prior(ck, out, num, seconds, frames, seed, gin_files, bindings, decoder_ckpt=decoder_run,
                               temperature=temperature)
        # its warnings were logged once by sample_prior (and are kept in samples.json)
        return Samples(out, num, rec["frames"], rec["diagnostics"].get("quality"))
    if temperature != 1.0:
        from audiogen.errors import ConfigError

        raise ConfigError(f"--temperature {temperature:g} applies to prior runs; {run} is a temporal VAE",
                          fix="drop --temperature (or use --mean for the output distribution's mean)")
    pipe, ck = load_pipeline(ck, gin_files, bindings)
    with shown(progress):
        paths = write_samples(pipe, ck, out, num, seconds, audio_settings().sample_rate, seed, mean=mean)
    return Samples(out, len(paths))
