"""Decode latents (a latent dataset, or .npy / .safetensors files) back to wav files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from audiogen.audio.io import save_audio
from audiogen.errors import ArtifactError
from audiogen.latents.dataset import LatentDataset, read_meta
from audiogen.latents.record import LatentRecord


def common_root(paths: list[str]) -> Path:
    """The folder below which decoded files keep their sources' relative layout."""
    if len(paths) == 1:
        return Path(paths[0]).parent
    return Path(os.path.commonpath([str(Path(p).parent) for p in paths]))


def iter_latents(inputs: list[str], latent_size: int | None = None):
    """(output name, latents (C, L), source length in samples or None) for every item; datasets keep their
    sources' relative layout and length."""
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            ds = LatentDataset(p)
            if latent_size is not None and ds.latent_size != latent_size:
                raise ArtifactError(f"latent dataset {p} has latent_size {ds.latent_size} but the decoder takes "
                                    f"{latent_size}", fix="decode with the autoencoder that made it (--ckpt)")
            root = common_root([f["source"] for f in ds.files])
            for i, f in enumerate(ds.files):
                rel = Path(f["source"]).relative_to(root).with_suffix(".wav")
                # a copy: the shard is a read-only memory map, and a view of it (a shard of one file) makes torch warn
                yield str(rel), np.array(ds.sequence(i).T, dtype=np.float32), f["samples"]
        elif p.suffix == ".npy":
            yield p.stem + ".wav", _check_shape(np.load(p), p, latent_size), None
        elif p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(p))
            if len(tensors) == 1:
                (name, arr), = tensors.items()
                yield p.stem + ".wav", _check_shape(arr, p, latent_size), None
            else:
                for name, arr in sorted(tensors.items()):
                    yield f"{p.stem}_{name}.wav", _check_shape(arr, p, latent_size), None
        elif not p.exists():
            raise ArtifactError(f"latents {p} do not exist")
        else:
            raise ArtifactError(f"{p}: unsupported latents (expected a latent dataset folder, .npy or .safetensors)")


def _check_shape(arr: np.ndarray, path: Path, latent_size: int | None) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or (latent_size is not None and arr.shape[0] != latent_size):
        raise ArtifactError(f"{path} holds an array of shape {arr.shape}; expected (latent_size, frames)"
                            + (f" with latent_size {latent_size}" if latent_size else ""),
                            fix="save latents channels-first, as encoders return them")
    if not np.isfinite(arr).all():
        raise ArtifactError(f"{path} contains NaN or inf latents")
    return np.ascontiguousarray(arr, dtype=np.float32)


def decode_to_files(decoder: torch.nn.Module, items, out: Path, sample_rate: int) -> list[Path]:
    written = []
    with torch.inference_mode():
        for name, z, samples in items:
            audio = decoder(torch.from_numpy(z)[None])[0, 0].numpy()
            audio = audio[:samples] if samples else audio  # a dataset's files come back at their source length
            written.append(save_audio(out / name, audio, sample_rate))
    return written


def dataset_record(inputs: list[str]) -> LatentRecord | None:
    """The record of the first latent dataset among the inputs (it names the decoder to use); every other dataset
    must have been made like it (one decoder for all), else an error naming both."""
    records = [LatentRecord.from_meta(read_meta(inp), inp) for inp in inputs if Path(inp).is_dir()]
    for other in records[1:]:
        records[0].check_same_kind(other, fix="decode each dataset with its own command (one decoder per call)")
    return records[0] if records else None


def decoder_pipeline(record: LatentRecord | None, ckpt=None, gin_files=(), bindings=()):
    """The autoencoder pipeline whose decoder turns these latents into audio: ``ckpt`` if given, else the
    checkpoint recorded with the latents (refused if it changed since: its decoder would not match), else the
    recorded operative config (weightless decoders such as a RAVE model file named in gin, whose sha256 is checked
    the same way). The decoder is checked against the record (latent size, hop, sample rate)."""
    from audiogen.errors import ConfigError
    from audiogen.pipeline import load_pipeline
    from audiogen.plugins import check_provenance

    base = None
    ae = record.autoencoder if record is not None else None
    if ckpt is None and ae is not None:
        if ae.checkpoint:
            ckpt = Path(ae.checkpoint["path"])
            _check_unchanged(ckpt, ae.checkpoint.get("sha256"), "checkpoint", record.source, "pass --ckpt")
        else:
            base = ae.operative_config or None
            check_provenance(ae.components, f"the autoencoder of {record.source}")
        if ae.model:  # a pretrained model file (RAVE export) the config reads by path
            _check_unchanged(Path(ae.model["path"]), ae.model.get("sha256"), "model file", record.source,
                             "pass --gin/--bind naming the model file that encoded them")
    if ckpt is None and base is None and not gin_files and not bindings:
        raise ConfigError("these latents do not name the autoencoder that made them",
                          fix="pass --ckpt of the autoencoder (or --gin for a pretrained one)")
    pipe, _ = load_pipeline(ckpt, gin_files, bindings, base=base)
    if pipe.decoder is None or pipe.latent_model is not None or pipe.decoder.out_channels != 1:
        raise ConfigError("decoding needs an autoencoder whose decoder outputs audio; this pipeline "
                          + ("has no decoder" if pipe.decoder is None else "decodes to distribution parameters"),
                          fix="pass --ckpt of an autoencoder (e.g. trained with pipelines/conv_ae.gin)")
    if ae is not None and base is not None and not gin_files and not bindings:
        # built from the recorded config: it must read the model file whose sha256 was checked above (a record
        # without encoder_info would otherwise decode with whatever file its config names, unchecked)
        built = getattr(pipe.decoder, "describe", lambda: {})()
        if built.get("model_sha256") and built["model_sha256"] != (ae.model or {}).get("sha256"):
            recorded = f"records model file {ae.model['path']}" if ae.model else "records no model file (sha256)"
            raise ConfigError(f"{record.source} {recorded} but its operative config builds a decoder from "
                              f"{built.get('model_path')}", fix="pass --gin/--bind naming the model file that "
                              "encoded them, or re-encode")
    if record is not None:
        from audiogen.settings import audio_settings_for

        record.check_decoder(pipe.decoder, str(ckpt) if ckpt is not None else "the given config",
                             audio_settings_for(pipe.decoder, "decoder").sample_rate)
    return pipe


def _check_unchanged(path: Path, sha256: str | None, what: str, source: str, fix: str) -> None:
    from audiogen.artifacts import sha256_file
    from audiogen.errors import ConfigError

    if not path.exists():
        raise ConfigError(f"the {what} {path} named by {source} no longer exists", fix=fix)
    if sha256 and sha256_file(path) != sha256:
        raise ConfigError(f"the {what} {path} has changed since the latents in {source} were made (sha256 differs): "
                          f"its decoder would not match them", fix=f"{fix}, or re-encode with the new one")
