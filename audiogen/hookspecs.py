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
"""

from __future__ import annotations

import pluggy

PROJECT = "audiogen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_encoders(register):
    """Register encoders: audio (B, 1, T) -> latent frames (B, C, T / hop). See ``audiogen.contracts.Encoder``."""


@hookspec
def register_decoders(register):
    """Register decoders: latent frames (B, C, L) -> audio or output-distribution parameters (B, P, L * hop)."""


@hookspec
def register_priors(register):
    """Register latent models / priors: score and sample latent sequences. See ``audiogen.contracts.Prior``."""


@hookspec
def register_distributions(register):
    """Register output distributions over coded audio samples. See ``audiogen.contracts.OutputDistribution``."""


@hookspec
def register_schedules(register):
    """Register diffusion noise schedules: the factory builds a schedule object; calling it returns float64 1-D betas,
    each in (0, 1). See ``audiogen.contracts.check_schedule``."""


@hookspec
def register_codings(register):
    """Register input codings (waveform <-> integer bins <-> model grid). See ``audiogen.audio.coding``."""


@hookspec
def register_datasets(register):
    """Register dataset classes (audio files, latent datasets, other sequences)."""


@hookspec
def register_config_dirs(register):
    """Register folders of gin files, found by relative name (``--gin myplugin/tiny.gin``)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``audiogen`` command group."""
