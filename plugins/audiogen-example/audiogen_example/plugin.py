"""The plugin module named by the entry point ``example = "audiogen_example.plugin"`` in pyproject.toml.

audiogen calls each ``@hookimpl`` function below once, with a ``register`` callback. The function names and the
argument name must be exactly those of ``audiogen.hookspecs`` (audiogen refuses the plugin, naming the closest
hook, otherwise). Import heavy modules inside the hooks so that ``audiogen --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from audiogen import hookimpl

GIN_DIR = Path(__file__).resolve().parent / "gin"


@hookimpl
def register_priors(register):
    from audiogen_example.gru_prior import GRUPrior

    # gin name: priors.example_gru (e.g. `priors.example_gru.hidden_size = 128`)
    register("example_gru", GRUPrior)


@hookimpl
def register_config_dirs(register):
    # gin files under this folder resolve by name: `--gin example/gru_prior.gin`
    register(GIN_DIR)


# --- beyond the template: what the example adds (an encoder, a noise schedule, a command) ---
PLUGIN = "example"  # the entry-point name in pyproject.toml


@hookimpl
def register_encoders(register):
    from audiogen_example.log_mel import LogMelEncoder

    # gin name: encoders.log_mel (e.g. `encoders.log_mel.n_mels = 80`)
    register("log_mel", LogMelEncoder)


@hookimpl
def register_schedules(register):
    from audiogen_example.sigmoid_schedule import SigmoidSchedule

    # gin name: schedules.sigmoid (`priors.diffwave.schedule = @schedules.sigmoid()`)
    register("sigmoid", SigmoidSchedule)


@hookimpl
def register_commands(cli):
    import click

    @cli.command("example-hello")
    def example_hello() -> None:
        """Say hello from the example plugin: its version and components."""
        from audiogen.plugins import get_registry
        from audiogen_example import __version__

        click.echo(f"audiogen-example {__version__} (plugin '{PLUGIN}')")
        reg = get_registry()
        for comps in reg.components.values():
            for _, comp in sorted(comps.items()):
                if comp.plugin == PLUGIN:
                    click.echo(f"  {comp.gin_name:<24} {comp.summary}")
        for plugin, path in reg.config_dirs:
            if plugin == PLUGIN:
                click.echo(f"  configs: {path}")
