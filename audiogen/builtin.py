"""The built-in components, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from audiogen.hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    from audiogen.encoders.conv1d import Conv1dEncoder
    from audiogen.encoders.cpc import CPCEncoder
    from audiogen.encoders.rave import RaveEncoder
    from audiogen.encoders.stack import StackEncoder
    from audiogen.encoders.tasnet import TasNetEncoder

    register("conv1d", Conv1dEncoder)
    register("stack", StackEncoder)
    register("rave", RaveEncoder)
    register("cpc", CPCEncoder)
    register("tasnet", TasNetEncoder)


@hookimpl
def register_decoders(register):
    from audiogen.decoders.conv1d import Conv1dDecoder
    from audiogen.decoders.dense import DenseDecoder
    from audiogen.decoders.rave import RaveDecoder
    from audiogen.decoders.tasnet import TasNetDecoder

    register("conv1d", Conv1dDecoder)
    register("dense", DenseDecoder)
    register("rave", RaveDecoder)
    register("tasnet", TasNetDecoder)


@hookimpl
def register_priors(register):
    from audiogen.priors.diffwave import DiffWavePrior
    from audiogen.priors.gaussian import DiagGaussianPrior
    from audiogen.priors.sequence import SequencePrior
    from audiogen.priors.temporal.cwvae import ClockworkVAE
    from audiogen.priors.temporal.lstm import LSTMModel
    from audiogen.priors.temporal.srnn import SRNN
    from audiogen.priors.temporal.vrnn import VRNN
    from audiogen.priors.temporal.wavenet import WaveNet

    register("diag_gaussian", DiagGaussianPrior)
    register("cwvae", ClockworkVAE)
    register("vrnn", VRNN)
    register("srnn", SRNN)
    register("lstm", LSTMModel)
    register("wavenet", WaveNet)
    register("sequence", SequencePrior)
    register("diffwave", DiffWavePrior)


@hookimpl
def register_schedules(register):
    from audiogen.schedules import BUILTIN

    for name, cls in BUILTIN.items():
        register(name, cls)


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


@hookimpl
def register_objectives(register):
    from audiogen.objectives.elbo import ELBO
    from audiogen.objectives.infonce import InfoNCE
    from audiogen.objectives.spectral import MultiScaleSpectralLoss

    # configs name these three without their kind (``pipeline.objective = @elbo()``): see plugins.reserved_names
    register("spectral_loss", MultiScaleSpectralLoss)
    register("elbo", ELBO)
    register("infonce", InfoNCE)


@hookimpl
def register_anneal(register):
    from audiogen.objectives import anneal

    register("constant", anneal.constant)
    register("linear", anneal.linear)
    register("cosine", anneal.cosine)
