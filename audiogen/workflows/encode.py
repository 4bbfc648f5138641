"""``audiogen encode``: audio files, folders or lists into a latent dataset with the encoder of an autoencoder run
(or a pretrained one named in gin). The machinery (sharded, resumable, distributed) is ``latents/encode.py``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from audiogen.latents.record import LatentRecord


@dataclass
class Encoded:
    out: Path
    meta: dict  # the dataset's meta.json
    record: LatentRecord
    seconds: float  # wall time of the encode


def encode(inputs: Sequence[str], out: Path, run: Path | None = None, gin_files: Sequence[str] = (),
           bindings: Sequence[str] = (), strict: bool = False, overwrite: bool = False,
           progress: bool = True) -> Encoded | None:
    """Encode ``inputs`` into the latent dataset ``out``; re-running the same command resumes an interrupted one.
    Returns None on the ranks of a distributed encode other than 0 (rank 0 reports)."""
    from audiogen import config
    from audiogen.artifacts import check_output, sha256_file
    from audiogen.audio.io import expand_inputs
    from audiogen.errors import ConfigError
    from audiogen.latents.encode import EncodeJob, run_encode
    from audiogen.pipeline import describe_pipeline, load_pipeline, refuse_untrained
    from audiogen.settings import audio_settings_for, encode_settings

    # -o is none of the inputs, inside none, holds none; what it may already hold (a dataset to resume or replace)
    # is encode's own check (latents/encode.py), hence overwrite here and no markers
    check_output(Path(out), True, inputs, runs=[run], markers=None)
    missing: list[dict] = []  # list entries that do not exist: skipped and recorded like unreadable files
    files = expand_inputs(list(inputs), missing)  # missing inputs fail before anything is built or written
    pipe, ck = load_pipeline(run, gin_files, bindings)
    if pipe.encoder is None or pipe.latent_model is not None:
        raise ConfigError("encode needs an autoencoder pipeline; this one "
                          + ("has no encoder" if pipe.encoder is None else "is a temporal VAE (its encoder reads "
                             "coded audio and feeds the latent model)"),
                          fix="pass --run of an autoencoder (e.g. trained with pipelines/conv_ae.gin)")
    if ck is None:
        refuse_untrained(pipe.encoder, "encoder")
    audio = audio_settings_for(pipe.encoder, "encoder")
    prov = describe_pipeline(pipe, audio)
    meta_prov = {
        "encoder": prov["components"].get("encoder"), "decoder": prov["components"].get("decoder"),
        "checkpoint": {"path": ck["path"], "sha256": sha256_file(Path(ck["path"]))} if ck else None,
        "built_components": prov["built_components"],
        "operative_config": config.operative_config(),
    }
    job = EncodeJob(pipe.encoder, files, Path(out), audio, encode_settings(), meta_prov, strict=strict,
                    overwrite=overwrite, progress=progress, failed=missing)
    t0 = time.perf_counter()
    meta = run_encode(job)
    if meta is None:  # another rank of a distributed encode
        return None
    return Encoded(Path(out), meta, LatentRecord.from_meta(meta, out), time.perf_counter() - t0)
