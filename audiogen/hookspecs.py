"""The plugin surface: one hook per component kind, each handed a ``register`` callback.

A plugin is a module (or object) with functions marked ``@hookimpl`` named like the specs below.
Built-in components are registered through exactly these hooks (see ``audiogen.builtin``).

    from audiogen import hookimpl

    @hookimpl
    def register_encoders(register):
        register("my_encoder", MyEncoder)

A misspelled hook name or argument is refused with the closest valid one (``audiogen.plugins.validate_hooks``).

``register(name, factory)``: ``name`` is the component's stable name within its kind (lower_snake_case);
``factory`` is a class or function building the component. It becomes gin-configurable as
``<kind>.<name>`` (e.g. ``encoders.my_encoder.channels = 64``).

The component kinds are the hooks marked ``@component(noun)`` below, in this order (``KINDS``): a new kind is one
more such hook, and nothing else lists them.
"""

from __future__ import annotations

import pluggy

PROJECT = "audiogen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
KINDS: dict[str, str] = {}  # kind (the hook's name after ``register_``) -> what one component is called in messages


def component(noun: str):
    """Mark a hookspec as registering components of one kind, gin ``<kind>.<name>``; ``noun``: one of them."""
    def mark(fn):
        KINDS[fn.__name__.removeprefix("register_")] = noun
        return fn
    return mark


@hookspec
@component("encoder")
def register_encoders(register):
    """Register encoders: audio (B, 1, T) -> latent frames (B, C, T / hop). See ``audiogen.contracts.Encoder``."""


@hookspec
@component("decoder")
def register_decoders(register):
    """Register decoders: latent frames (B, C, L) -> audio or output-distribution parameters (B, P, L * hop)."""


@hookspec
@component("prior")
def register_priors(register):
    """Register latent models / priors: score and sample latent sequences. See ``audiogen.contracts.Prior``."""


@hookspec
@component("distribution")
def register_distributions(register):
    """Register output distributions over coded audio samples. See ``audiogen.contracts.OutputDistribution``."""


@hookspec
@component("schedule")
def register_schedules(register):
    """Register diffusion noise schedules: the factory builds a schedule object; calling it returns float64 1-D betas,
    each in (0, 1). See ``audiogen.contracts.check_schedule``."""


@hookspec
@component("coding")
def register_codings(register):
    """Register input codings (waveform <-> integer bins <-> model grid). See ``audiogen.audio.coding``."""


@hookspec
@component("dataset")
def register_datasets(register):
    """Register dataset classes (audio files, latent datasets, other sequences)."""


@hookspec
@component("objective")
def register_objectives(register):
    """Register training objectives. The pipeline's shape decides the call: an autoencoder's
    ``objective(recon, target, mask) -> logs``, a temporal VAE's ``objective(out, step) -> logs`` (``out`` from
    ``Pipeline.score``), an encoder pretrained alone ``objective(encoder, audio, frame_mask) -> logs`` (with
    ``contrastive = True`` and ``check_encoder(encoder)``). ``logs["loss"]`` is the scalar trained on. See
    ``audiogen.contracts.check_objective``."""


@hookspec
@component("annealing schedule")
def register_anneal(register):
    """Register annealing schedules of a scalar over training steps (``elbo.beta``, ``elbo.free_nats``), gin
    ``anneal.<name>``: the factory builds a callable ``step -> float``. See ``audiogen.contracts.check_anneal``."""


@hookspec
def register_config_dirs(register):
    """Register folders of gin files, found by relative name (``--gin myplugin/tiny.gin``)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``audiogen`` command group."""
