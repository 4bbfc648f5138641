"""``audiogen reconstruct``: posterior reconstructions of audio files by a trained pipeline, with a comparison picture
and provenance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from audiogen.artifacts import atomic_write_json, versions
from audiogen.progress import bar


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


def reconstruct(run: Path, inputs: Sequence[str], out: Path, gin_files: Sequence[str] = (),
                bindings: Sequence[str] = (), mean: bool = False, seed: int = 0, overwrite: bool = False,
                progress: bool = True) -> list[Path]:
    """``audiogen reconstruct``: the reconstructions of the audio ``inputs`` (files, folders, lists) written to
    ``out`` with reconstructions.png and reconstructions.json; returns the wav paths."""
    from audiogen.artifacts import check_output
    from audiogen.audio.io import expand_inputs
    from audiogen.pipeline import load_pipeline
    from audiogen.progress import shown
    from audiogen.settings import audio_settings

    files = expand_inputs(list(inputs))
    check_output(out, overwrite, [*inputs, *files], runs=[run], markers=("reconstructions.json",))
    pipe, ck = load_pipeline(run, gin_files, bindings)
    with shown(progress):
        return reconstruct_files(pipe, ck, files, out, audio_settings(), mean=mean, seed=seed)
