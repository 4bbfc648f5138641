"""``audiogen train-prior``: a prior over the sequences of a latent dataset (or a folder of .npy sequences).

The latent size comes from the dataset: the macro ``LATENT_SIZE`` is bound to it, and a prior whose ``latent_size``
gin leaves unbound gets it directly (``fill_latent_size``). The prior trains on normalised sequences by default
(``train_prior.normalize``); its checkpoint records the dataset's record (``latents.record``) (which encoder/decoder made the latents, sample rate, hop) and the statistics used, so
``audiogen sample`` can de-normalise and decode without being told. Same run-folder layout, resume,
``overwrite`` and divergence checks as ``audiogen train`` (:mod:`audiogen.training`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from audiogen.errors import ConfigError
from audiogen.latents.dataset import collate_latents
from audiogen.latents.sequences import open_sequences, peek_latent_size, set_fixed_dims
from audiogen.pipeline import build_pipeline
from audiogen.settings import prior_settings
from audiogen.training.loaders import batch_loader
from audiogen.training.module import AudiogenModule
from audiogen.training.run import fit, locks_run_folder, start_run

log = logging.getLogger("audiogen")


class PriorModule(AudiogenModule):
    kind = "prior"

    def __init__(self, pipeline, settings, provenance: dict):
        super().__init__(settings, provenance)
        self.pipeline = pipeline  # checkpoint keys pipeline.prior.*, loadable by load_pipeline like any run

    @property
    def prior(self):
        return self.pipeline.prior

    def _step(self, batch, stage: str):
        out = self.prior.training_loss(batch["latents"], batch["mask"])
        self._log_all(out, stage, batch["latents"].shape[0])
        return out["loss"]

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if hasattr(self.prior, "update_ema"):
            self.prior.update_ema()


def dataset_summary(ds, normalize: bool) -> dict:
    """What the prior's checkpoint records about its data: the dataset's record (checked) and the normalisation."""
    record = ds.record  # checked: a damaged record fails here, not in `sample`
    norm = {"mean": ds.mean.tolist(), "std": ds.std.tolist()} if normalize else None
    return record.to_prior(ds.meta, str(Path(ds.path).resolve()), norm)


def check_plugin_prior(prior) -> None:
    """Run a plugin's prior through ``contracts.check_prior`` (on a copy, with the random state kept) before
    training: a prior that breaks its contract is one error naming its plugin, not a traceback from deep inside
    Lightning. Built-ins are checked by audiogen's own tests."""
    from audiogen.contracts import check_prior
    from audiogen.plugins import BUILTIN, contract_error, get_registry

    who = get_registry().describe(prior)
    if who["plugin"] == BUILTIN:
        return
    try:
        with torch.random.fork_rng():
            check_prior(copy.deepcopy(prior))
    except Exception as exc:  # whatever the plugin raises, the user learns which plugin and which rule
        raise contract_error("priors", who, exc) from None


def fill_latent_size(size: int | None) -> tuple[str, object] | None:
    """Give the prior the dataset's latent size when gin leaves its ``latent_size`` unbound, so a prior config
    needs no ``latent_size = %LATENT_SIZE`` line. Returns (selector, bound value) when gin binds it (then that
    value is used, and checked against the data), else None."""
    import inspect

    import gin

    try:
        ref = gin.query_parameter("pipeline.prior")
    except ValueError:
        return None
    configurable = getattr(ref, "configurable", None)
    if configurable is None:  # not a @reference: nothing to fill
        return None
    selector = ref.scoped_selector
    try:
        return selector, gin.query_parameter(f"{selector}.latent_size")
    except ValueError:  # unbound
        pass
    try:
        takes = "latent_size" in inspect.signature(configurable.wrapped).parameters
    except (TypeError, ValueError):
        takes = False
    if size and takes:
        with gin.unlock_config():
            gin.bind_parameter(f"{selector}.latent_size", size)
    return None


def _latent_size_fix(binding, size: int) -> str:
    if binding is None:
        return f"make the prior's latent_size {size} (its configurable takes no latent_size that gin could set)"
    selector, value = binding
    if "LATENT_SIZE" in str(value):
        return (f"leave LATENT_SIZE out (it is read from the dataset; {selector}.latent_size = %LATENT_SIZE) or bind "
                f"LATENT_SIZE={size}")
    return (f"{selector}.latent_size is bound to {value!r} in gin: remove that binding (train-prior sets it from "
            f"the dataset) or bind it to %LATENT_SIZE")


def _check_resumed_data(last: Path, ds) -> None:
    """A resumed run continues on data like its checkpoint's (same autoencoder, size, rate, hop, encoder mode), with
    the normalisation it started with: the checkpoint's record must keep describing what the prior learned."""
    from audiogen.artifacts import load_checkpoint
    from audiogen.latents.record import LatentRecord

    rec = LatentRecord.from_prior(load_checkpoint(last))
    rec.check_same_kind(ds.record, fix=f"resume on the data this run was trained on ({rec.dataset_path}), or "
                                       "start over with --overwrite, or train into a new run folder")
    if rec.normalization is not None and ds.normalize_items:
        ds.mean = np.asarray(rec.normalization["mean"], np.float32)
        ds.std = np.asarray(rec.normalization["std"], np.float32)


@locks_run_folder
def train_prior(data: str, out: Path, gin_files: list[str], bindings: list[str], valid: str | None = None,
                progress: bool = True, overwrite: bool = False) -> Path:
    """Train the gin-configured prior on ``data``; returns the path of ``model.ckpt``. Re-running on ``out``
    resumes; ``overwrite`` deletes what ``out`` holds and starts at step 0."""
    out = Path(out)
    size = peek_latent_size(data)
    # the dataset sets LATENT_SIZE (a --bind given after it wins, and a different one is refused below)
    bindings = ([f"LATENT_SIZE={size}"] if size else []) + list(bindings)
    resume, s = start_run(out, gin_files, bindings, "pipelines/diffwave_latents.gin (or another prior)", overwrite)
    latent_size_binding = fill_latent_size(size)
    ps = prior_settings()
    pipe = build_pipeline(check_plugins=True)  # a plugin's schedule etc. breaking its contract: one error
    prior = pipe.prior
    if prior is None:
        raise ConfigError("the configuration has no pipeline.prior", fix="include a prior config, e.g. "
                          "--gin pipelines/diffwave_latents.gin, or bind pipeline.prior = @priors.sequence()")
    check_plugin_prior(prior)
    ds = open_sequences(data, crop=ps.crop_frames, normalize=ps.normalize, seed=s.seed)
    if ds.latent_size != prior.latent_size:
        raise ConfigError(f"{data} holds sequences of latent size {ds.latent_size} but the prior is configured for "
                          f"{prior.latent_size}", fix=_latent_size_fix(latent_size_binding, ds.latent_size))
    if resume:
        _check_resumed_data(resume, ds)
    set_fixed_dims(ds, getattr(prior, "fixed_dims", []))
    for w in getattr(prior, "config_warnings", list)():
        log.warning("%s", w)
    valid_ds = None
    if valid:
        valid_ds = open_sequences(valid, crop=ps.crop_frames, normalize=ps.normalize, seed=s.seed)
        ds.record.check_same_kind(valid_ds.record, fix="validate on latents encoded like the training data")
        valid_ds.mean, valid_ds.std = ds.mean, ds.std  # score with the training statistics
    from audiogen.plugins import get_registry

    provenance = {"components": {"prior": get_registry().describe(prior)}, "built_components": pipe.built_components,
                  "latent_size": prior.latent_size, "dataset": dataset_summary(ds, ps.normalize)}
    module = PriorModule(pipe, s, provenance)
    train_loader = batch_loader(ds, s.batch_size, s.seed, s.num_workers, collate_latents, train=True)
    valid_loader = batch_loader(valid_ds, s.batch_size, s.seed, s.num_workers, collate_latents,
                                train=False) if valid_ds else None
    from audiogen.listen import listen_callbacks, prior_listener

    record = replace(ds.record, normalization=provenance["dataset"]["normalization"])
    listen = listen_callbacks(lambda ls: prior_listener(prior, record, ls), s.val_every, out)
    return fit(module, out, s, train_loader, valid_loader, resume, progress, listen)
