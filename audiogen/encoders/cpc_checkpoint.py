"""Loading a pretrained CPC body (conv feature encoder + GRU) from an audiogen checkpoint; errors say why not."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from audiogen.errors import AudiogenError, ConfigError

PREFIX = "pipeline.encoder.body."
PRETRAIN_FIX = ("pretrain one with `audiogen train --gin encoders/cpc_pretrain.gin TRAIN -o RUN` and pass "
                "RUN/model.ckpt (or bind CPC_CHECKPOINT=None for a randomly initialised encoder)")


def load_body(path, body: nn.Module, architecture: dict) -> dict:
    """Load the ``encoders.cpc`` body weights of the checkpoint at ``path`` (a .ckpt or a run folder) into ``body``.

    Accepts any audiogen checkpoint whose encoder is ``encoders.cpc`` (a pretraining run, or a temporal VAE that
    fine-tuned one). Returns what the provenance records: resolved path, sha256, the run's step, rate and coding.
    While a pipeline is rebuilt from its own checkpoint (which holds these weights), the file is not read.
    """
    from audiogen.artifacts import (
        load_checkpoint,
        restoring_weights,
        sha256_file,
        strip_prefix,
    )

    if restoring_weights():
        return {"path": str(path), "note": "weights restored from the pipeline checkpoint; this file was not re-read"}
    p = Path(str(path)).expanduser()
    if not p.exists():
        where = "" if p.is_absolute() else f" (relative to {Path.cwd()})"
        raise ConfigError(f"CPC checkpoint {p} does not exist{where}", fix=PRETRAIN_FIX)
    try:
        ckpt = load_checkpoint(p)
    except AudiogenError as exc:
        raise ConfigError(f"encoders.cpc.pretrained: {exc}", fix=PRETRAIN_FIX) from None
    meta, file = ckpt["audiogen"], ckpt["path"]
    encoder = (meta.get("components") or {}).get("encoder", {}).get("name")
    state = strip_prefix(ckpt["state_dict"], PREFIX)
    if encoder != "encoders.cpc" or not state:
        raise ConfigError(f"{file} is not a CPC checkpoint (its encoder is {encoder or 'missing'}, not encoders.cpc)",
                          fix=PRETRAIN_FIX)
    saved = (meta.get("encoder_info") or {}).get("architecture")
    if saved and saved != architecture:
        diff = ", ".join(f"{k}={saved.get(k)} there, {architecture.get(k)} here" for k in sorted(architecture)
                         if saved.get(k) != architecture.get(k))
        binds = " ".join(f"--bind 'encoders.cpc.{k}={saved[k]}'" for k in sorted(saved)
                         if saved[k] != architecture.get(k))
        raise ConfigError(f"{file} holds a CPC encoder of other sizes ({diff})",
                          fix=f"configure the encoder like the pretraining run: {binds}")
    own = body.state_dict()
    wrong = [f"{k} {tuple(state[k].shape)} there, {tuple(v.shape)} here" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if wrong or missing or unexpected:
        raise ConfigError(f"{file} does not fit this CPC encoder (shapes: {wrong[:3]}, missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})", fix="configure encoders.cpc like the pretraining run")
    body.load_state_dict(state)
    _check_rate(file, meta.get("sample_rate"))
    return {"path": file, "sha256": sha256_file(file), "global_step": meta.get("global_step"),
            "sample_rate": meta.get("sample_rate"), "coding": meta.get("coding")}


def _check_rate(file: str, rate) -> None:
    """The conv strides are in samples: features learnt at one rate are meaningless at another."""
    from audiogen.settings import audio_settings

    here = audio_settings().sample_rate
    if rate and int(rate) != here:
        raise ConfigError(f"{file} was pretrained on {rate} Hz audio but audio.sample_rate is {here}",
                          fix=f"--bind audio.sample_rate={rate} (audio is resampled when read)")
