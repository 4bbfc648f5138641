"""``audiogen sample`` and ``audiogen reconstruct``: audio from a trained temporal VAE, with pictures and provenance."""

from __future__ import annotations

from pathlib import Path

import torch

from audiogen.artifacts import atomic_write_json, versions
from audiogen.progress import bar


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


def reconstruct_files(pipe, ckpt: dict, files: list[Path], out: Path, audio, mean: bool = False,
                      seed: int = 0) -> list[Path]:
    """Posterior reconstructions of ``files`` read with the run's ``audio`` settings (rate, channels, resample)."""
    from audiogen.audio.io import load_audio, save_audio
    from audiogen.latents.decode import unique_names
    from audiogen.plots import plot_comparison

    # x/a.wav and y/a.wav must not overwrite one another: the same unique names as decode gives
    names = unique_names([f"{Path(f).stem}.wav" for f in files], [Path(f).suffix[1:] for f in files])
    torch.manual_seed(seed)
    sample_rate = audio.sample_rate
    out.mkdir(parents=True, exist_ok=True)
    paths, pairs = [], []
    for f, name in zip(bar(files, desc="reconstruct", unit="file"), names):
        x = load_audio(f, sample_rate, channels=audio.channels, resample=audio.resample)
        wave = torch.from_numpy(x)[None, None]
        with torch.no_grad():  # an autoencoder's reconstruct() is also its training forward
            y = pipe.vae_reconstruct(wave, mean=mean) if pipe.latent_model is not None else pipe.reconstruct(wave)
        y = y[0, 0].numpy()
        paths.append(save_audio(out / name, y, sample_rate))
        if len(pairs) < 4:
            pairs.append((Path(f).name, x, y))
    plot_comparison(out / "reconstructions.png", pairs, sample_rate)
    atomic_write_json(out / "reconstructions.json", {
        "kind": "reconstructions", "checkpoint": ckpt["path"], "sources": [str(f) for f in files],
        "output": "distribution mean" if mean else "sampled from the output distribution", "seed": seed,
        "operative_config": ckpt["audiogen"]["operative_config"], "created_by": versions(),
    })
    return paths
