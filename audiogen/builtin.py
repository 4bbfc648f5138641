"""The built-in components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from audiogen.hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    from audiogen.encoders.conv1d import Conv1dEncoder
    from audiogen.encoders.rave import RaveEncoder

    register("conv1d", Conv1dEncoder)
    register("rave", RaveEncoder)


@hookimpl
def register_decoders(register):
    from audiogen.decoders.conv1d import Conv1dDecoder
    from audiogen.decoders.rave import RaveDecoder

    register("conv1d", Conv1dDecoder)
    register("rave", RaveDecoder)


@hookimpl
def register_priors(register):
    from audiogen.priors.cwvae import ClockworkVAE
    from audiogen.priors.gaussian import DiagGaussianPrior

    register("diag_gaussian", DiagGaussianPrior)
    register("cwvae", ClockworkVAE)


@hookimpl
def register_codings(register):
    from audiogen.audio.coding import LinearPCM, MuLaw

    register("mulaw", MuLaw)
    register("linear", LinearPCM)


@hookimpl
def register_datasets(register):
    from audiogen.audio.dataset import AudioDataset
    from audiogen.latents.dataset import LatentDataset

    register("audio_files", AudioDataset)
    register("latents", LatentDataset)


@hookimpl
def register_distributions(register):
    from audiogen.distributions import BUILTIN

    for name, cls in BUILTIN.items():
        register(name, cls)
