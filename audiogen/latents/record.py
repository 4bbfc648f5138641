"""The hand-off between stages: what a latent dataset and a prior run carry about their latents, read and checked here.

``encode`` writes it into the dataset's ``meta.json`` (keys ``sample_rate``, ``hop``, ``frame_rate``,
``latent_size``, ``dtype``, ``stats``, ``encoder``, ``decoder``, ``built_components``, ``checkpoint``,
``operative_config``, ``encoder_info``) and reads it back with :meth:`LatentRecord.from_meta` before writing;
``train-prior`` copies it into its checkpoint under ``audiogen.dataset`` with the normalisation it trained with;
``sample``, ``decode``, ``info``, ``evaluate`` and ``probe`` read it with :meth:`LatentRecord.from_meta` or
:meth:`LatentRecord.from_prior` and nothing else, and check what they take over with the ``check_*`` methods,
whose errors name both sides and the fix.

Fields of :class:`LatentRecord`:

- ``sample_rate`` (Hz) and ``hop`` (audio samples per latent frame) of the audio the latents were made from; None
  for sequences that are not audio latents (a folder of ``.npy``). ``frame_rate`` = sample_rate / hop.
- ``latent_size``: dimensions per frame; ``dtype``: how the shards store them.
- ``stats``: per-dimension ``mean``, ``std``, ``min``, ``max`` over every frame of the dataset.
- ``autoencoder``: what made the latents (:class:`Autoencoder`), None when unknown.
- ``source``: where the record was read from (named in errors); ``version``: the latent dataset format version
  (checked by ``read_meta``; None for ``.npy`` folders).
- prior runs only: ``dataset_path`` (the dataset trained on) and ``normalization`` (the mean and std the prior's
  inputs were normalised with, None when it trained on raw latents).

Fields of :class:`Autoencoder` (``kind`` says which of checkpoint, model file or config identifies it):
``encoder``/``decoder``: {name, plugin, version} of the components;
``components``: every component gin built for it, {gin name: {plugin, version}} (plugin provenance);
``checkpoint``: {path, sha256} of the trained autoencoder whose decoder inverts the latents, or None;
``model``: {path, sha256} of a pretrained model file (a RAVE export) the encoder read, or None;
``operative_config``: the gin config that rebuilds it; ``encoder_mode``: how a pretrained encoder ran
('mean' or 'sample' for RAVE); ``latency``: measured lag of decode(encode(x)) behind x in samples (None: not
measured).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from audiogen.errors import ArtifactError, ConfigError


def _int(x, low: int = 1) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _dict_or_none(x) -> bool:
    return x is None or isinstance(x, dict)


def _numbers(v, n: int) -> bool:
    """A list of ``n`` finite numbers (a prior's checkpoint carries its record without ``read_meta``'s checks)."""
    return isinstance(v, list) and len(v) == n and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)


SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Autoencoder:
    encoder: dict | None = None
    decoder: dict | None = None
    components: dict = field(default_factory=dict)
    checkpoint: dict | None = None
    model: dict | None = None
    operative_config: str = ""
    encoder_mode: str | None = None
    latency: int | None = None

    @property
    def kind(self) -> str:
        """'trained checkpoint', 'pretrained model file' or 'configuration' (what identifies the autoencoder)."""
        return "trained checkpoint" if self.checkpoint else "pretrained model file" if self.model else "configuration"

    @property
    def names(self) -> str:
        """'encoders.x / decoders.y (checkpoint PATH | model PATH)' for messages and ``info``."""
        parts = [d.get("name", "?") for d in (self.encoder, self.decoder) if d]
        where = self.checkpoint or self.model
        return " / ".join(parts) + (f" ({where.get('path')})" if where else "")


@dataclass(frozen=True)
class LatentRecord:
    sample_rate: int | None
    hop: int | None
    latent_size: int
    dtype: str | None
    stats: dict
    autoencoder: Autoencoder | None = None
    source: str = "?"
    version: int | None = None
    dataset_path: str | None = None
    normalization: dict | None = None

    # ------------------------------------------------------------------------------------------------ derived
    @property
    def frame_rate(self) -> float | None:
        return self.sample_rate / self.hop if self.sample_rate and self.hop else None

    def frames(self, seconds: float) -> int:
        """Latent frames covering ``seconds`` of audio (the one place the frame count is computed from time)."""
        if not self.frame_rate:
            raise ConfigError(f"{self.source}: the latents have no sample rate and hop, so a length in seconds "
                              "cannot be turned into frames", fix="pass --frames N")
        return math.ceil(seconds * self.sample_rate / self.hop)

    @property
    def decodable(self) -> bool:
        a = self.autoencoder
        return bool(self.sample_rate and a and (a.checkpoint or a.operative_config))

    # ------------------------------------------------------------------------------------------------ reading
    @classmethod
    def from_meta(cls, meta: dict, source: str | Path) -> "LatentRecord":
        """The record of a latent dataset's meta (checked by ``read_meta`` for layout) or of a ``.npy`` folder."""
        def bad(what: str):
            return ArtifactError(f"{source} is damaged: {what}", fix="re-encode the dataset with `audiogen encode`")

        sr, hop, c = meta.get("sample_rate"), meta.get("hop"), meta.get("latent_size")
        if not _int(c):
            raise bad(f"latent_size is {c!r}, not a positive integer")
        if (sr is None) != (hop is None) or (sr is not None and not (_int(sr) and _int(hop))):
            raise bad(f"sample_rate {sr!r} and hop {hop!r} must both be positive integers (or both absent)")
        stats = meta.get("stats")
        if not isinstance(stats, dict):
            raise bad("stats is missing")
        for k in ("mean", "std", "min", "max"):
            if not _numbers(stats.get(k), c):
                raise bad(f"stats.{k} is not a list of {c} finite numbers")
        if any(s < 0 for s in stats["std"]):
            raise bad(f"stats.std has a negative value ({min(stats['std'])})")
        if any(lo > hi for lo, hi in zip(stats["min"], stats["max"])):
            raise bad("stats.max is below stats.min in some dimension")
        return cls(sample_rate=sr, hop=hop, latent_size=c, dtype=meta.get("dtype"),
                   stats={k: stats[k] for k in ("mean", "std", "min", "max")},
                   autoencoder=_autoencoder(meta, bad), source=str(source),
                   version=meta.get("version") if _int(meta.get("version")) else None)

    @classmethod
    def from_prior(cls, ck: dict) -> "LatentRecord":
        """The record a prior checkpoint (read by ``load_checkpoint``) carries about the data it was trained on."""
        where = ck.get("path", "the checkpoint")
        info = ck["audiogen"].get("dataset")
        if not isinstance(info, dict) or not isinstance(info.get("meta"), dict):
            raise ArtifactError(f"{where} does not record the latent dataset it was trained on (not a prior run?)",
                                fix="pass a run folder written by `audiogen train-prior`")
        rec = cls.from_meta(info["meta"], where)
        norm = info.get("normalization")
        if norm is not None and not (isinstance(norm, dict) and all(
                _numbers(norm.get(k), rec.latent_size) for k in ("mean", "std")) and min(norm["std"]) > 0):
            raise ArtifactError(f"{where} is damaged: its normalization is not a mean and positive std of "
                                f"{rec.latent_size} finite values", fix="retrain the prior")
        path = info.get("path")
        return replace(rec, dataset_path=path if isinstance(path, str) else None, normalization=norm)

    # ------------------------------------------------------------------------------------------------ writing
    def to_prior(self, meta: dict, dataset_path: str, normalization: dict | None) -> dict:
        """What ``train-prior`` stores under ``audiogen.dataset`` (the dataset's meta without the per-file rows)."""
        kept = {k: v for k, v in meta.items() if k not in ("files", "shards", "failed")}
        kept["num_files"] = len(meta.get("files", []))
        return {"path": dataset_path, "meta": kept, "normalized": normalization is not None,
                "normalization": normalization}

    # ------------------------------------------------------------------------------------------------ checks
    def check_latent_size(self, size: int, other: str, fix: str) -> None:
        if size != self.latent_size:
            raise ConfigError(f"{self.source} holds latents of size {self.latent_size} but {other} takes {size}",
                              fix=fix)

    def check_decoder(self, decoder, other: str, sample_rate: int | None = None) -> None:
        """A decoder (``sample --decoder-run``, ``decode --run``) fits these latents: same size, rate and hop.
        ``sample_rate``: the rate its pipeline runs at (most decoders have no rate of their own)."""
        fix = "use the autoencoder that made the latents (leave out --run / --decoder-run to use the recorded one)"
        self.check_latent_size(decoder.latent_size, f"the decoder of {other}", fix)
        for what, mine in (("hop", self.hop), ("sample_rate", self.sample_rate)):
            theirs = getattr(decoder, what, None) or (sample_rate if what == "sample_rate" else None)
            if mine is not None and theirs is not None and theirs != mine:
                raise ConfigError(f"{self.source} holds latents of {what} {mine} but the decoder of {other} has "
                                  f"{what} {theirs}", fix=fix)


    def check_made_by(self, checkpoint: str | Path, fix: str) -> None:
        """These latents were made by the autoencoder ``checkpoint`` (a file), where the record names one."""
        from audiogen.artifacts import sha256_file

        mine = self.autoencoder.checkpoint if self.autoencoder else None
        if mine and mine.get("sha256") != sha256_file(Path(checkpoint)):
            raise ConfigError(f"{self.source} was made by the autoencoder {mine.get('path')}, not by {checkpoint} "
                              "(sha256 differs)", fix=fix)

    def check_same_kind(self, other: "LatentRecord", fix: str) -> None:
        """``other`` (latents handed to a stage) were made like these: same size, rate, hop, and autoencoder
        (checkpoint or model file hash, encoder mode) where both record one."""
        self.check_latent_size(other.latent_size, other.source, fix)
        for what in ("sample_rate", "hop"):
            a, b = getattr(self, what), getattr(other, what)
            if a is not None and b is not None and a != b:
                raise ConfigError(f"{self.source} has {what} {a} but {other.source} has {what} {b}", fix=fix)
        mine, theirs = self.autoencoder, other.autoencoder
        if (mine is None) != (theirs is None):  # one side cannot be compared at all: not evidence of a match
            known, unknown = (self, other) if theirs is None else (other, self)
            raise ConfigError(f"{unknown.source} records no autoencoder, so nothing says it was made like "
                              f"{known.source} (by {known.autoencoder.names})", fix=fix)
        if mine is None or theirs is None:
            return
        # same size, rate and hop say nothing of which autoencoder: a RAVE model file and a trained checkpoint (or
        # two encoders named in configurations) make latents that no one decoder inverts
        names = [tuple((d or {}).get("name") for d in (a.encoder, a.decoder)) for a in (mine, theirs)]
        if mine.kind != theirs.kind or (all(all(n) for n in names) and names[0] != names[1]):
            raise ConfigError(f"the latents of {self.source} and {other.source} were made by different "
                              f"autoencoders ({mine.names} [{mine.kind}] vs {theirs.names} [{theirs.kind}])", fix=fix)
        for what in ("checkpoint", "model"):
            a, b = getattr(mine, what), getattr(theirs, what)
            if a and b and a.get("sha256") and b.get("sha256") and a["sha256"] != b["sha256"]:
                raise ConfigError(f"the latents of {self.source} and {other.source} were made by different "
                                  f"autoencoders ({what} {a.get('path')} vs {b.get('path')}, sha256 differs)", fix=fix)
        if mine.encoder_mode and theirs.encoder_mode and mine.encoder_mode != theirs.encoder_mode:
            raise ConfigError(f"{self.source} was encoded in {mine.encoder_mode} mode but {other.source} in "
                              f"{theirs.encoder_mode} mode", fix=fix)


def _autoencoder(meta: dict, bad) -> Autoencoder | None:
    info = meta.get("encoder_info") or {}
    if not isinstance(info, dict):
        raise bad("encoder_info is not a mapping")
    for k in ("encoder", "decoder", "checkpoint", "built_components"):
        if not _dict_or_none(meta.get(k)):
            raise bad(f"{k} is {meta.get(k)!r}, not a mapping")
    ck = meta.get("checkpoint")
    if ck is not None and not (isinstance(ck.get("path"), str) and isinstance(ck.get("sha256"), str)):
        raise bad(f"checkpoint is {ck!r}, expected {{'path': str, 'sha256': str}}")
    model = None
    if isinstance(info.get("model_path"), str):
        sha = info.get("model_sha256")
        if not (isinstance(sha, str) and SHA256.fullmatch(sha)):  # without it a changed model file would pass
            raise bad(f"encoder_info.model_sha256 is {sha!r}, not the sha256 of {info['model_path']}")
        model = {"path": info["model_path"], "sha256": sha}
    mode = info.get("encoding_mode")
    if mode is not None and not (isinstance(mode, str) and mode):  # 'mean' or 'sample' for RAVE; plugins name theirs
        raise bad(f"encoder_info.encoding_mode is {mode!r}, not the name of a mode")
    latency = info.get("latency")
    if latency is not None and not _int(latency, 0):
        raise bad(f"encoder_info.latency is {latency!r}, not a number of samples")
    config = meta.get("operative_config") or ""
    if not isinstance(config, str):
        raise bad("operative_config is not text")
    if not (meta.get("encoder") or ck or config):
        return None
    return Autoencoder(encoder=meta.get("encoder"), decoder=meta.get("decoder"),
                       components=meta.get("built_components") or {}, checkpoint=ck, model=model, operative_config=config,
                       encoder_mode=mode, latency=latency)
