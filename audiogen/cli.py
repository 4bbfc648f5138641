"""The ``audiogen`` command line: every command builds its components from gin files and bindings."""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from pathlib import Path

import click

from audiogen import __version__
from audiogen.errors import AudiogenError

log = logging.getLogger("audiogen")


_GIN_CALL = re.compile(r"\n\s*In call to configurable '[^']*' \(<[^>]*>\)")


# C0 and C1 control characters but newline and tab: an artifact's text (a source name, a config line) could
# otherwise send terminal escape sequences (clear the screen, retitle the window, hide what follows)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` for a terminal, control characters shown escaped (``\\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(printable(f"audiogen: error: {self.message}"), err=True)


class AudiogenGroup(click.Group):
    """Loads plugin commands on first use and turns AudiogenError into a clean message with exit code 2."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if not AudiogenGroup._plugins_loaded:
            AudiogenGroup._plugins_loaded = True
            from audiogen.plugins import register_commands

            register_commands(self)

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load_plugin_commands()
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AudiogenError as exc:
            # gin appends "In call to configurable 'x' (<function ...>)" to errors raised in a configurable
            raise UserError(_GIN_CALL.sub("", str(exc))) from None


def gin_options(f):
    f = click.option("--bind", "bindings", multiple=True, metavar="'NAME.PARAM=VALUE'",
                     help="gin binding, repeatable; applied after the gin files.")(f)
    f = click.option("--gin", "gin_files", multiple=True, metavar="FILE",
                     help="gin file by path or by name (e.g. pipelines/conv_ae.gin), repeatable; later wins.")(f)
    return f


@click.group(cls=AudiogenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audiogen")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """Generative models of audio: encode -> prior -> decode, composed by gin, extended by plugins."""
    if verbose:
        logging.getLogger("audiogen").setLevel(logging.DEBUG)


# ---------------------------------------------------------------------------------------------------------- plugins
@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx, as_json: bool) -> None:
    """List plugins and every component by kind, with its plugin and version (`plugins new NAME`: start one)."""
    if ctx.invoked_subcommand is not None:
        return
    from audiogen.workflows import plugins as listing

    if as_json:
        click.echo(json.dumps(listing.report(), indent=1))
        return
    out, err = listing.table()
    for line in out:
        click.echo(line)
    for line in err:
        click.echo(line, err=True)


@plugins.command("new")
@click.argument("name")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Folder to create (default: ./audiogen-NAME).")
def plugins_new(name: str, out: Path | None) -> None:
    """Write a working plugin package NAME (a GRU prior, its train-prior gin file and tests) to start from."""
    from audiogen.plugin_template import write_plugin

    written = write_plugin(name, out or Path(f"audiogen-{name.replace('_', '-')}"))
    click.echo(f"wrote plugin '{name}' to {written}\n"
               f"next: pip install -e {written} && pytest {written / 'tests'}")


@cli.command()
def configs() -> None:
    """List the gin files that resolve by name (and the plugin files a higher-ranked one shadows)."""
    from audiogen import config

    for name, path, notes in config.listing():
        click.echo(f"{name:<36} {path or '(ambiguous)'}")
        for note in notes:
            click.echo(f"{'':<36}   {note}")


def _echo_once(text: str) -> None:
    """Echo from rank 0 only: a distributed run is one command, whatever the number of processes."""
    from audiogen.distributed import is_main_process

    if is_main_process():
        click.echo(text)


# ------------------------------------------------------------------------------------------------ one grammar
# Every command reads the model it uses as `--run RUN` (a run folder or its .ckpt), takes its inputs (audio files,
# folders or list files; latent datasets) as arguments, writes to `-o/--out` (checked by artifacts.check_output:
# never an input, never a folder that is not the command's own output), refuses to write over earlier output
# without `--overwrite` (re-running train, train-prior or encode on its own output resumes it instead; for the
# training commands and quickstart `--overwrite` starts the run over), and shows progress bars unless
# `--no-progress`. Old spellings work for one more release, with a warning naming the new one.
_PATH = click.Path(path_type=Path)


def deprecated(old: str, new: str) -> None:
    click.echo(f"audiogen: warning: {old} is deprecated and goes in the next release; use {new}", err=True)


def _renamed(value, old_value, old: str, new: str):
    """The value of an option spelled ``new``, or (with a warning) of its old spelling ``old``."""
    if old_value is None or old_value == ():
        return value
    deprecated(old, new)
    if value is not None and value != ():
        raise click.UsageError(f"{old} and {new} are the same option: pass {new} only")
    return old_value


def run_option(what: str, old: str | None = "--ckpt"):
    """``--run RUN``: the trained model a command reads (``what`` it is for), and its old spelling, hidden. Without
    an old option the run is required: checked by the command, which also reads it from its old place, the
    arguments."""
    def deco(f):
        if old:
            f = click.option(old, "old_run", type=_PATH, hidden=True)(f)
        text = f"Run folder or .ckpt: {what}." + ("" if old else "  [required]")
        return click.option("--run", "run", type=_PATH, metavar="RUN", help=text)(f)
    return deco


def _run(run: Path | None, old_run: Path | None, old: str = "--ckpt") -> Path | None:
    return _renamed(run, old_run, old, "--run")


def _need_run(run: Path | None, command: str) -> Path:
    if run is None:
        raise click.UsageError(f"missing option '--run': the run folder or .ckpt to {command} with")
    return run


def _run_argument(ctx: click.Context, run: Path | None, command: str) -> Path:
    """``--run``, or (the old spelling) the run as the command's argument."""
    extra = list(ctx.args)
    if extra:
        if run is not None or len(extra) > 1:
            raise click.UsageError(f"unexpected argument(s): {' '.join(extra)}")
        deprecated(f"the run as an argument (`audiogen {command} RUN`)", f"`audiogen {command} --run RUN`")
        run = Path(extra[0])
    return _need_run(run, command)


def _run_first_input(run: Path | None, inputs: tuple, command: str, old_form: bool = False) -> tuple[Path, list]:
    """``--run`` and the inputs, or (the old spelling ``COMMAND RUN INPUTS...``) the run as the first argument."""
    from audiogen.artifacts import is_run

    if run is None and inputs and (old_form or (len(inputs) > 1 and is_run(inputs[0]))):
        deprecated(f"the run as first argument (`audiogen {command} RUN ...`)", f"`audiogen {command} --run RUN ...`")
        run, inputs = Path(inputs[0]), tuple(inputs[1:])
    run = _need_run(run, command)
    for p in inputs:  # a run among the inputs (`--run R R a.wav`): it would be read as a folder without audio
        if is_run(p):
            raise click.UsageError(f"the input {p} is a run (a run folder or .ckpt), not something to {command}: "
                                   f"pass the run once, as --run, and the audio as arguments "
                                   f"(`audiogen {command} --run {run} AUDIO...`)")
    return run, list(inputs)


def _default_out(out: Path | None, default: str, command: str) -> Path:
    """``-o`` is required by every command that writes; two had defaults, kept one more release with a warning."""
    if out is None:
        deprecated(f"{command} without -o (writing to ./{default})", f"-o {default}")
        return Path(default)
    return out


def _out_option(help: str, required: bool = True):
    return click.option("-o", "--out", type=_PATH, required=required, help=help)


_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output: a file, or a folder holding "
                          "this command's earlier output (emptied first; any other folder is refused).")
# decode's wav files carry no mark of decode: it writes over files of the same names and deletes nothing
_overwrite_files = click.option("--overwrite", is_flag=True, help="Write into a folder that holds files, over "
                                "those of the same names (nothing is deleted).")
# train and train-prior resume by default: --overwrite is how a run folder is reused for another configuration
_overwrite_run = click.option("--overwrite", is_flag=True, help="Start over: delete what the run folder holds "
                              "(only a run folder; refused while another run writes there) and train from step 0.")
_no_progress = click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
_RUN_ARGS = {"allow_extra_args": True}  # the run as an argument: the old spelling, read from ctx.args


# ------------------------------------------------------------------------------------------------------------ train
@cli.command()
@gin_options
@click.argument("inputs", nargs=-1, metavar="AUDIO...")
@click.option("--data", "old_data", multiple=True, hidden=True)
@click.option("--valid", multiple=True, metavar="AUDIO", help="Validation audio (files, folders or lists), repeatable.")
@_out_option("Run folder; re-running on the same folder resumes.")
@_overwrite_run
@_no_progress
def train(gin_files, bindings, inputs, old_data, valid, out, overwrite, no_progress) -> None:
    """Train a pipeline on AUDIO (files, folders or list files): an autoencoder, or a temporal VAE end to end
    (e.g. the Clockwork VAE).

    Re-running on the same -o folder resumes it with its saved configuration; --overwrite starts over."""
    from audiogen.workflows.train import train as run

    data = list(inputs) + list(_renamed((), old_data, "--data AUDIO", "AUDIO as arguments"))
    if not data:
        raise click.UsageError("missing AUDIO: the audio files, folders or list files to train on")
    final = run(data, out, list(gin_files), list(bindings), valid=list(valid) or None, progress=not no_progress,
                overwrite=overwrite)
    _echo_once(f"wrote {final}")


@cli.command("train-prior")
@gin_options
@click.argument("data", type=click.Path(path_type=Path, exists=True), metavar="LATENTS")
@click.option("--valid", type=click.Path(path_type=Path, exists=True),
              help="Validation sequences (a latent dataset or .npy folder), scored with the training statistics.")
@_out_option("Run folder; re-running on the same folder resumes.")
@_overwrite_run
@_no_progress
def train_prior(gin_files, bindings, data, valid, out, overwrite, no_progress) -> None:
    """Train a prior on LATENTS: a latent dataset (from `audiogen encode`) or a folder of .npy sequences (T x D).

    Re-running on the same -o folder resumes it with its saved configuration; --overwrite starts over."""
    from audiogen.workflows.train_prior import train_prior as run

    final = run(str(data), out, list(gin_files), list(bindings), valid=str(valid) if valid else None,
                progress=not no_progress, overwrite=overwrite)
    _echo_once(f"wrote {final}")


# ----------------------------------------------------------------------------------------------------------- encode
@cli.command()
@gin_options
@run_option("the autoencoder (or --gin for a pretrained one)")
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
@_out_option("Latent dataset folder; re-running the same command resumes an interrupted encode.")
@click.option("--strict", is_flag=True, help="Fail, listing every unreadable, truncated or clipped file (without it "
              "unreadable files are skipped, the others encoded; all are recorded in meta.json).")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at OUT.")
@_no_progress
def encode(gin_files, bindings, run, old_run, inputs, out, strict, overwrite, no_progress) -> None:
    """Encode AUDIO (files, folders or list files) into a latent dataset."""
    from audiogen.workflows.encode import encode as run_encode

    done = run_encode(inputs, out, _run(run, old_run), gin_files, bindings, strict=strict, overwrite=overwrite,
                      progress=not no_progress)
    if done is None:  # another rank of a distributed encode: rank 0 reports
        return
    meta, rec = done.meta, done.record
    click.echo(f"encoded {meta['num_files']} files ({meta['total_seconds']:.1f} s of audio, "
               f"{meta['total_frames']} frames of {rec.latent_size} dims at {rec.frame_rate:.2f} frames/s) into "
               f"{out} in {done.seconds:.1f} s")
    if rec.autoencoder and rec.autoencoder.latency:
        click.echo(f"the autoencoder's output lags its input by {rec.autoencoder.latency} samples (causal model): "
                   "decode compensates it", err=True)
    for e in meta["files"]:
        for w in e.get("warnings", ()):
            click.echo(f"warning: {e['source']}: {w}", err=True)
    if meta["failed"]:
        click.echo(f"{len(meta['failed'])} files could not be read:", err=True)
        for e in meta["failed"]:
            click.echo(f"  {e['reason']}", err=True)


# ------------------------------------------------------------------------------------------------------------ index
@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
@_out_option("Manifest CSV to write.")
@click.option("--strict", is_flag=True, help="Fail, listing every unreadable or truncated file, instead of skipping "
              "them.")
@_overwrite
def index(inputs, out, strict, overwrite) -> None:
    """Write a manifest CSV (path, frames, sample_rate, channels, subtype) of AUDIO inputs. Every command takes it
    as an input list; training opens it without listing folders or probing files."""
    from audiogen.workflows.index import index as run

    done = run(inputs, out, strict=strict, overwrite=overwrite)
    click.echo(f"indexed {len(done.infos)} files ({sum(i.duration for i in done.infos):.1f} s of audio) into {out}")
    for e in done.failed:
        click.echo(f"skipped: {e['reason']}", err=True)
    for i in done.infos:
        for w in i.warnings:
            click.echo(f"warning: {i.path}: {w}", err=True)


# ----------------------------------------------------------------------------------------------------------- decode
@cli.command()
@gin_options
@run_option("the autoencoder whose decoder to use (default: the one the dataset records)")
@click.argument("latents", nargs=-1, required=True, metavar="LATENTS...")
@_out_option("Folder for the wav files.")
@_overwrite_files
@_no_progress
def decode(gin_files, bindings, run, old_run, latents, out, overwrite, no_progress) -> None:
    """Decode LATENTS (a latent dataset folder, or .npy/.safetensors files of shape (C, L)) to wav files."""
    from audiogen.workflows.decode import decode as run_decode

    written = run_decode(latents, out, _run(run, old_run), gin_files, bindings, overwrite=overwrite,
                         progress=not no_progress)
    click.echo(f"wrote {len(written)} wav files to {out}")


# ---------------------------------------------------------------------------------------------------------- explore
@cli.group()
def explore() -> None:
    """Latent-space tools: interpolate between files, trajectories over chosen dimensions, means of encodings.
    Each writes NAME.npy latents (decodable with `audiogen decode`), NAME.wav and explore.json."""


def _explore_options(f):
    f = _overwrite(_no_progress(f))
    f = _out_option("Folder for the latents, wavs and explore.json.")(f)
    f = run_option("the autoencoder (or --gin for RAVE)")(f)
    return gin_options(f)


@explore.command("interpolate")
@_explore_options
@click.argument("a", type=click.Path(path_type=Path, exists=True))
@click.argument("b", type=click.Path(path_type=Path, exists=True))
@click.option("--points", type=click.IntRange(min=2), help="Sequences from A to B, both ends included.  [default: 8]")
@click.option("--steps", "old_steps", type=click.IntRange(min=2), hidden=True)
@click.option("--slerp", is_flag=True, help="Spherical interpolation per frame.")
def explore_interpolate(gin_files, bindings, run, old_run, out, overwrite, no_progress, a, b, points, old_steps,
                        slerp) -> None:
    """Decode latent sequences on the way from the encoding of audio file A to that of B."""
    from audiogen.workflows.explore import explore_interpolate as run_it

    points = _renamed(points, old_steps, "explore interpolate --steps", "--points")
    names = run_it(a, b, out, _run(run, old_run), gin_files, bindings, points=8 if points is None else points,
                   slerp=slerp, overwrite=overwrite, progress=not no_progress)
    click.echo(f"wrote {len(names)} interpolations to {out}")


@explore.command("mean")
@_explore_options
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
def explore_mean(gin_files, bindings, run, old_run, out, overwrite, no_progress, inputs) -> None:
    """Decode the frame-wise mean of the encodings of AUDIO (files, folders or list files)."""
    from audiogen.workflows.explore import explore_mean as run_it

    files = run_it(inputs, out, _run(run, old_run), gin_files, bindings, overwrite=overwrite,
                   progress=not no_progress)
    click.echo(f"wrote the mean of {len(files)} encodings to {out}")


@explore.command("trajectory")
@_explore_options
@click.option("--shape", type=click.Choice(["line", "circle", "grid"]), default="circle", show_default=True)
@click.option("--dims", "dims", type=int, multiple=True, default=(0, 1), show_default=True,
              help="Latent dimensions to move along (repeat the option).")
@click.option("--radius", type=float, default=2.0, show_default=True, help="In units of each dimension's std.")
@click.option("--around", type=click.Path(path_type=Path, exists=True),
              help="Start from this file's encoding (default: the mean of --stats-from, or zeros).")
@click.option("--stats-from", type=click.Path(path_type=Path, exists=True),
              help="A latent dataset whose per-dimension mean and std set the origin and the units.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Length of each decoded point without --around (with it: that file's length).")
@click.option("--grid-points", type=click.IntRange(min=1), help="Grid: points per side.  [default: 5]")
@click.option("--grid-steps", "old_grid_steps", type=click.IntRange(min=1), hidden=True)
def explore_trajectory(gin_files, bindings, run, old_run, out, overwrite, no_progress, shape, dims, radius, around,
                       stats_from, seconds, grid_points, old_grid_steps) -> None:
    """Decode a line, a circle or a grid of points over chosen latent dimensions."""
    from audiogen.workflows.explore import explore_trajectory as run_it

    grid_points = _renamed(grid_points, old_grid_steps, "--grid-steps", "--grid-points")
    names = run_it(out, _run(run, old_run), gin_files, bindings, shape=shape, dims=dims, radius=radius,
                   around=around, stats_from=stats_from, seconds=seconds,
                   grid_points=5 if grid_points is None else grid_points, overwrite=overwrite,
                   progress=not no_progress)
    click.echo(f"wrote {len(names)} trajectory decodes to {out}")


# --------------------------------------------------------------------------------------------------------- evaluate
@cli.command()
@gin_options
@run_option("the model to score", old=None)
@click.argument("inputs", nargs=-1, metavar="INPUTS...")
@click.option("--data", "old_data", multiple=True, hidden=True)
@click.option("--iw", "iw_samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Importance samples K for the importance-weighted bound (1: ELBO only).")
@click.option("--segment-seconds", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Score long files in segments of this length with the state carried across (0: whole).")
@_out_option("Folder for evaluation.json and evaluation.md (default: print the table only).", required=False)
@_overwrite
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quality-samples", type=click.IntRange(min=0),
              help="Prior runs: sequences sampled for the Fréchet distances to the data (default 8; 0: skip).")
@_no_progress
def evaluate(gin_files, bindings, run, inputs, old_data, iw_samples, segment_seconds, out, overwrite, seed,
             quality_samples, no_progress) -> None:
    """Likelihood in bits per frame of INPUTS (audio files, folders or list files, scored whole): total -log2 p
    (bound) over all files / total audio samples. For a prior run (`train-prior`), INPUTS is one latent dataset:
    its held-out score (nats and bits per frame and per dimension, or the denoising loss per noise level for
    diffusion priors)."""
    from audiogen.workflows.evaluate import evaluate as run_evaluate

    data = _renamed((), old_data, "--data INPUTS", "INPUTS as arguments")
    run, inputs = _run_first_input(run, tuple(inputs), "evaluate", old_form=bool(data))
    inputs = list(inputs) + list(data)
    if not inputs:
        raise click.UsageError("missing INPUTS: the audio (or, for a prior run, the latent dataset) to score")
    _, table = run_evaluate(run, inputs, out, gin_files, bindings, iw_samples=iw_samples,
                            segment_seconds=segment_seconds, seed=seed, quality_samples=quality_samples,
                            overwrite=overwrite, progress=not no_progress)
    click.echo(table)
    if out:
        click.echo(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.md'}")


# ------------------------------------------------------------------------------------------------------------ probe
@cli.command()
@gin_options
@run_option("the model whose representations to probe", old=None)
@click.argument("latents", type=click.Path(path_type=Path, exists=True), required=False)
@click.option("--labels", "labels_csv", type=click.Path(path_type=Path, exists=True), required=True,
              help="CSV with a path column, label columns and optional start/end columns (seconds).")
@click.option("--label", "label_cols", multiple=True,
              help="Label column to probe (repeatable; default: every column but path/start/end and --where ones).")
@click.option("--where", "where", multiple=True, metavar="COL=VALUE", help="Keep rows with COL == VALUE (repeatable).")
@click.option("--k", "ks", type=click.IntRange(min=1), multiple=True, default=(1, 5, 10), show_default=True)
@click.option("--lda-dims", type=click.IntRange(min=1), default=5, show_default=True,
              help="Dimensions of the cross-validated LDA subspace for the second kNN read-out.")
@click.option("--folds", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--no-mel", is_flag=True, help="Skip the log-mel baseline.")
@click.option("--n-mels", type=click.IntRange(min=1), default=80, show_default=True)
@click.option("--limit", type=click.IntRange(min=3), help="Use N rows, evenly spaced over the file (after --where).")
@_out_option("Folder for probe.json, probe.md and the LDA plots.")
@_overwrite
@_no_progress
def probe(gin_files, bindings, run, latents, labels_csv, label_cols, where, ks, lda_dims, folds, no_mel, n_mels,
          limit, out, overwrite, no_progress) -> None:
    """What the latents capture: leave-one-out kNN accuracy per label and 2-D LDA plots of time-averaged
    representations, per level of a run (--run) or of a latent dataset (LATENTS), against log-mel features."""
    from audiogen.errors import ConfigError
    from audiogen.workflows.probe import probe as run_probe

    if run is None and latents is not None and not (latents / "meta.json").is_file():
        deprecated("the run as an argument (`audiogen probe RUN`)", "`audiogen probe --run RUN`")
        run, latents = latents, None
    if (run is None) == (latents is None):
        raise click.UsageError("pass either --run RUN or a latent dataset LATENTS")
    conditions = {}
    for w in where:
        if "=" not in w:
            raise ConfigError(f"--where {w!r} is not COL=VALUE", fix="e.g. --where split=test")
        col, val = w.split("=", 1)
        conditions[col.strip()] = val
    results, table = run_probe(labels_csv, out, run, latents, gin_files, bindings, label_cols, conditions, ks,
                               lda_dims, folds, not no_mel, n_mels, limit, overwrite=overwrite,
                               progress=not no_progress)
    click.echo(table)
    click.echo(f"wrote {out / 'probe.json'}, {out / 'probe.md'} and {len(list(out.glob('lda_*.png')))} LDA plots")


# ----------------------------------------------------------------------------------------------- sample, reconstruct
@cli.command(context_settings=_RUN_ARGS)
@gin_options
@run_option("the temporal VAE or prior to sample from", old=None)
@click.option("-n", "num", type=click.IntRange(min=1), default=4, show_default=True, help="Number of samples.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True)
@_out_option("Folder for the samples (required; ./samples for one more release).", required=False)
@_overwrite
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mean", is_flag=True, help="Write the output distribution's mean instead of sampling it.")
@click.option("--frames", type=click.IntRange(min=1), help="Length in frames (priors over sequences without audio).")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Prior runs: scale every noise draw (latent z, output distribution) by this; below 1 gives "
                   "more probable, less varied samples, 0 none.")
@click.option("--decoder-run", type=_PATH, metavar="RUN",
              help="Prior samples: autoencoder to decode with (default: the one the prior's dataset names).")
@click.option("--decoder-ckpt", "old_decoder", type=_PATH, hidden=True)
@_no_progress
@click.pass_context
def sample(ctx, gin_files, bindings, run, num, seconds, out, overwrite, seed, mean, frames, temperature, decoder_run,
           old_decoder, no_progress) -> None:
    """Unconditional samples from a temporal VAE, or from a prior (decoded with its dataset's autoencoder):
    wavs, PNGs and samples.json (with diagnostics for priors)."""
    from audiogen.workflows.sample import sample as run_sample

    run = _run_argument(ctx, run, "sample")
    decoder_run = _renamed(decoder_run, old_decoder, "--decoder-ckpt", "--decoder-run")
    out = _default_out(out, "samples", "sample")
    done = run_sample(run, out, num, seconds, frames, seed, mean, decoder_run, gin_files, bindings,
                      overwrite=overwrite, progress=not no_progress, temperature=temperature)
    if done.frames is None:
        click.echo(f"wrote {done.files} samples and samples.png to {out}")
        return
    click.echo(f"wrote {done.files} samples ({done.frames} frames each) and samples.png to {out}")
    if done.quality is not None:
        from audiogen.quality import summary

        click.echo(summary(done.quality, "the prior's dataset"))


@cli.command()
@gin_options
@run_option("the trained pipeline", old=None)
@click.argument("inputs", nargs=-1, required=True, metavar="AUDIO...")
@_out_option("Folder for the reconstructions (required; ./reconstructions for one more release).",
             required=False)
@_overwrite
@click.option("--mean", is_flag=True,
              help="Write the output distribution's mean instead of a sample (for mu-law audio the mean of a "
                   "broad, sign-symmetric prediction is near silence; samples keep the envelope).")
@click.option("--seed", type=int, default=0, show_default=True)
@_no_progress
def reconstruct(gin_files, bindings, run, inputs, out, overwrite, mean, seed, no_progress) -> None:
    """Posterior reconstructions of AUDIO (files, folders or list files): wavs and a comparison PNG."""
    from audiogen.workflows.reconstruct import reconstruct as run_reconstruct

    run, inputs = _run_first_input(run, inputs, "reconstruct")
    out = _default_out(out, "reconstructions", "reconstruct")
    paths = run_reconstruct(run, inputs, out, gin_files, bindings, mean=mean, seed=seed, overwrite=overwrite,
                            progress=not no_progress)
    click.echo(f"wrote {len(paths)} reconstructions and reconstructions.png to {out}")


# ----------------------------------------------------------------------------------------------------------- export
@cli.command(context_settings=_RUN_ARGS)
@run_option("the autoencoder or prior to export", old=None)
@_out_option("TorchScript file to write (.ts).")
@_overwrite
@click.option("--window-frames", type=click.IntRange(min=2),
              help="DiffWave priors: frames generated per window (default: the crop the prior was trained on).")
@click.option("--context-frames", type=click.IntRange(min=0),
              help="DiffWave priors: frames of the previous window each window continues (default: a quarter).")
@click.option("--ddim-steps", type=click.IntRange(min=1),
              help="DiffWave priors: DDIM steps per window (default: audiogen.export.DEFAULT_STEPS, 10).")
@click.option("--steps", "old_steps", type=click.IntRange(min=1), hidden=True)
@click.pass_context
def export(ctx, run, out, overwrite, window_frames, context_frames, ddim_steps, old_steps) -> None:
    """One TorchScript file for nn~ (Max/MSP, Pure Data): encode/decode/forward of an autoencoder run, plus a
    streaming `prior` method for a prior run on a latent dataset (e.g. RAVE latents)."""
    from audiogen.workflows.export import export as run_export

    run = _run_argument(ctx, run, "export")
    ddim_steps = _renamed(ddim_steps, old_steps, "export --steps", "--ddim-steps")
    rec = run_export(run, out, window_frames, context_frames, ddim_steps, overwrite=overwrite)
    click.echo(f"wrote {out}: {rec['kind']} export with methods {', '.join(rec['methods'])} "
               f"({rec['sample_rate']} Hz, {rec['latent_size']} latent dims, hop {rec['hop']})")


# ------------------------------------------------------------------------------------------------------------- info
@cli.command()
@click.argument("path", type=click.Path(path_type=Path))  # describe() names an interrupted encode or a missing path
@click.option("--json", "as_json", is_flag=True)
def info(path: Path, as_json: bool) -> None:
    """Describe a latent dataset or a run (folder or .ckpt) from its recorded metadata."""
    from audiogen.workflows.info import describe

    d = describe(path)
    if as_json:
        click.echo(json.dumps(d, indent=1))
    else:
        for k, v in d.items():  # the text is the artifact's: printed with its control characters escaped
            if k == "operative_config":
                click.echo(printable(f"{k}:\n" + "\n".join("    " + ln for ln in v.splitlines()
                                                            if ln and not ln.startswith("#"))))
            elif k in ("failed_files", "warnings"):
                if v:
                    click.echo(printable(f"{k}:\n" + "\n".join("  - " + "\n    ".join(str(e).splitlines())
                                                                for e in v)))
            else:
                click.echo(printable(f"{k}: {v}"))


# ------------------------------------------------------------------------------------------------------- quickstart
@cli.command()
@click.argument("audio", type=click.Path(path_type=Path, exists=True), required=False)
@click.option("--data", "old_data", type=click.Path(path_type=Path, exists=True), hidden=True)
@click.option("-o", "--out", type=_PATH, default=Path("audiogen-quickstart"), show_default=True,
              help="Folder for everything it writes; re-running on it resumes the training.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Training steps (default from the gin file's quickstart).")
@click.option("--steps", "old_steps", type=click.IntRange(min=1), hidden=True)
@click.option("--bind", "bindings", multiple=True, help="Extra gin bindings for training.")
@click.option("--overwrite", is_flag=True, help="Start over: empty OUT (only a quickstart's folder) and train "
              "from step 0 instead of resuming.")
@_no_progress
def quickstart(audio, old_data, out, max_steps, old_steps, bindings, overwrite, no_progress) -> None:
    """Synthesise a corpus (or use your AUDIO folder or list), train a small autoencoder, encode, decode, and
    compare."""
    from audiogen.workflows.quickstart import quickstart as run

    audio = _renamed(audio, old_data, "quickstart --data AUDIO", "AUDIO as the argument")
    max_steps = _renamed(max_steps, old_steps, "quickstart --steps", "--max-steps")
    run(audio, out, max_steps, list(bindings), echo=click.echo, progress=not no_progress, overwrite=overwrite)


def _rank_zero_or_error(record: logging.LogRecord) -> bool:
    from audiogen.distributed import is_main_process

    return record.levelno >= logging.ERROR or is_main_process()


# commands that run no model: they skip the CPU measurement of audiogen.cpu
_NO_COMPUTE = ("info", "plugins", "configs", "index")


def command_of(args: list[str]) -> str | None:
    """The command a command line runs: its first word that is not an option (the group's options are flags)."""
    return next((a for a in args if not a.startswith("-")), None)


def main(argv=None) -> None:
    from audiogen.cpu import apply_cpu_defaults

    args = sys.argv[1:] if argv is None else list(argv)
    command = command_of(args)
    if command and command not in _NO_COMPUTE and not {"-h", "--help", "--version"} & set(args):
        # threads and OpenMP spinning for a shared machine (0.2 s): before torch loads
        apply_cpu_defaults(command=command)
    # Our messages on stderr; gin logs its include search on the root logger, which we keep quiet.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("audiogen: %(levelname)s: %(message)s"))
    # the extra processes of a distributed run repeat rank 0's messages; their errors still show
    handler.addFilter(_rank_zero_or_error)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger().addHandler(logging.NullHandler())
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    cli.main(args=argv, prog_name="audiogen")


if __name__ == "__main__":  # python -m audiogen.cli
    main()
