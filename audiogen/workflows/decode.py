"""``audiogen decode``: latents (a latent dataset, or .npy / .safetensors files) back to wav files with the
decoder of the autoencoder that made them. The machinery is ``latents/decode.py``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def decode(latents: Sequence[str], out: Path, run: Path | None = None, gin_files: Sequence[str] = (),
           bindings: Sequence[str] = (), overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Decode every input to ``out`` (all files or none); ``run`` defaults to the autoencoder the dataset names.
    Returns the paths written."""
    from audiogen.artifacts import check_output
    from audiogen.latents.decode import dataset_record, decode_to_files, decoder_pipeline, iter_latents
    from audiogen.progress import shown
    from audiogen.settings import audio_settings_for

    # decode writes wav files only, nothing that marks the folder as its own: --overwrite writes over, never empties
    check_output(out, overwrite, latents, runs=[run], markers=None)
    pipe = decoder_pipeline(dataset_record(list(latents)), run, gin_files, bindings)
    sr = audio_settings_for(pipe.decoder, "decoder").sample_rate
    with shown(progress):
        return decode_to_files(pipe.decoder, iter_latents(list(latents), pipe.decoder.latent_size), out, sr)
