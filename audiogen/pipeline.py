"""The unit every command builds: encoder -> prior -> decoder, composed by gin (``pipeline.*``): built from the
parsed config (``build_pipeline``) or a checkpoint (``load_pipeline``). The class itself is ``audiogen.model``
(imported by ``audiogen.config`` to declare ``pipeline.*`` without importing this module)."""

from __future__ import annotations

import contextlib

from audiogen.errors import ConfigError, PluginError
from audiogen.model import Pipeline, active_units  # noqa: F401  (re-exported: the names callers import)


def describe_pipeline(pipe: Pipeline, audio) -> dict:
    """Provenance recorded in every artifact made from this pipeline."""
    from audiogen.plugins import get_registry

    reg = get_registry()
    parts = {k: reg.describe(getattr(pipe, k)) for k in ("encoder", "decoder", "prior") if getattr(pipe, k) is not None}
    out = {"components": parts, "sample_rate": audio.sample_rate, "hop": pipe.hop, "latent_size": pipe.latent_size,
           "audio": audio.as_dict(), "coding": pipe.coding.name if pipe.coding is not None else None,
           "built_components": getattr(pipe, "built_components", {})}
    return {**out, **encoder_info(pipe.encoder)}


def _recorded_model(ckpt: dict) -> tuple[str, str | None] | None:
    """(path, sha256) of the pretrained model file (a RAVE export) a checkpoint records its encoder read, or None."""
    info = ckpt["audiogen"].get("encoder_info")
    path = info.get("model_path") if isinstance(info, dict) else None
    if not isinstance(path, str) or not path:
        return None
    sha = info.get("model_sha256")
    return path, sha if isinstance(sha, str) else None


def encoder_info(encoder) -> dict:
    """``{"encoder_info": encoder.describe()}`` for encoders that describe themselves (which pretrained file, path
    and sha256, a CPC encoder was initialised from; which encoding mode a RAVE model ran in), else nothing."""
    describe = getattr(encoder, "describe", None)
    return {"encoder_info": describe()} if callable(describe) else {}


def build_pipeline(check_plugins: bool = False) -> Pipeline:
    """``Pipeline()`` from the parsed gin config; a component that rejects its arguments is a ConfigError.
    ``check_plugins`` (training) runs plugin components of ``plugins.CHECKED_KINDS`` through their contract
    checkers as they are built."""
    from audiogen.plugins import checking_plugin_components, recording_builds

    try:
        with recording_builds() as built, (checking_plugin_components() if check_plugins
                                           else contextlib.nullcontext()):
            pipe = Pipeline()
        pipe.built_components = built  # {gin name: {plugin, version}}: recorded by every artifact made from it
        return pipe
    except PluginError as exc:
        raise getattr(exc, "unaugmented", exc) from None
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace("\n", "\n  ")
        raise ConfigError(f"cannot build the pipeline: {msg}", fix="check the gin files and --bind values") from None


def refuse_untrained(component, role: str) -> None:
    """Built from a config without a checkpoint, a component with weights would run with random ones: refused,
    unless it is marked ``pretrained`` (it loaded its weights itself, e.g. a RAVE export or a pretrained CPC)."""
    weights = sum(p.numel() for p in component.parameters())
    if weights and not getattr(component, "pretrained", False):
        raise ConfigError(f"{role} {getattr(component, 'audiogen_component', type(component).__name__)} has "
                          f"{weights} untrained weights", fix="pass --run with a model trained by `audiogen train`")


def load_pipeline(ckpt_path=None, gin_files=(), bindings=(), base: str | None = None,
                  base_source: str = "an artifact"):
    """Build the gin-configured pipeline, optionally from a checkpoint (a path, or one already read by
    ``load_checkpoint``; its operative config is parsed first, then ``gin_files`` and ``bindings``, then its weights
    are loaded), or from ``base``, an operative config stored in ``base_source``. Returns (pipeline, checkpoint or
    None)."""
    from audiogen import config
    from audiogen.artifacts import (
        load_checkpoint,
        strip_prefix,
        weights_from_checkpoint,
    )

    ckpt = ckpt_path if isinstance(ckpt_path, dict) else load_checkpoint(ckpt_path) if ckpt_path else None
    if ckpt is not None:
        from audiogen.plugins import check_provenance, provenance_of

        base, base_source = ckpt["audiogen"]["operative_config"], f"checkpoint {ckpt['path']}"
        check_provenance(provenance_of(ckpt["audiogen"]), f"this run ({ckpt['path']})")
    if base is None and not gin_files and not bindings:
        raise ConfigError("nothing to build the pipeline from", fix="pass --run RUN or --gin CONFIG")
    config.parse(list(gin_files), list(bindings), base=base, base_source=base_source)
    recorded = _recorded_model(ckpt) if ckpt is not None else None
    guard = contextlib.nullcontext()
    if ckpt is not None and not gin_files and not bindings:
        from audiogen.rave.torchscript import only_model_file

        # a model file (TorchScript: code) named by the stored config is loaded only if the checkpoint records it
        guard = only_model_file(recorded[0] if recorded else None, f"checkpoint {ckpt['path']}")
    with guard, weights_from_checkpoint() if ckpt is not None else contextlib.nullcontext():
        pipe = build_pipeline()
    if ckpt is not None:
        built = (encoder_info(pipe.encoder).get("encoder_info") or {}).get("model_sha256")
        if recorded and built and recorded[1] and built != recorded[1]:
            raise ConfigError(f"the model file {recorded[0]} has changed since checkpoint {ckpt['path']} was trained "
                              "with it (sha256 differs)", fix="restore the model file the run was trained with")
        state = strip_prefix(ckpt["state_dict"], "pipeline.")
        own = pipe.state_dict()
        other = [f"{k} {tuple(v.shape)} (built: {tuple(own[k].shape)})" for k, v in state.items()
                 if k in own and v.shape != own[k].shape]
        if other:  # same names, other sizes: a binding changed the architecture (load_state_dict would raise)
            raise ConfigError(f"checkpoint {ckpt['path']} does not fit the configured pipeline: weights of another "
                              f"shape, e.g. {', '.join(other[:3])}",
                              fix="drop --gin/--bind options that change the architecture")
        missing, unexpected = pipe.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"checkpoint {ckpt['path']} does not fit the configured pipeline "
                              f"(missing {missing[:4]}, unexpected {unexpected[:4]})",
                              fix="drop --gin/--bind options that change the architecture")
    return pipe.eval(), ckpt
