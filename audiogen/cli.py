"""The ``audiogen`` command line: every command builds its components from gin files and bindings."""

from __future__ import annotations

import json
import logging
import re
import shlex
import sys
import time
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
    from audiogen.plugins import KINDS, get_registry

    reg = get_registry()
    clashes = [f"{k}.{n}: provided by plugins {' and '.join(sorted(ps))}, unusable until one is removed"
               for (k, n), ps in sorted(reg.clashes.items())]
    if as_json:
        click.echo(json.dumps({
            "plugins": reg.plugins,
            "components": {k: {n: {"plugin": c.plugin, "version": c.version, "gin": c.gin_name}
                               for n, c in sorted(reg.components[k].items())} for k in KINDS},
            "config_dirs": [[p, str(d)] for p, d in reg.config_dirs],
            "failures": [f.__dict__ for f in reg.failures], "conflicts": reg.conflicts,
            "clashes": {f"{k}.{n}": ps for (k, n), ps in sorted(reg.clashes.items())}, "warnings": reg.warnings,
        }, indent=1))
        return
    click.echo("plugins: " + ", ".join(f"{p} {v}" for p, v in reg.plugins.items()))
    every = [c for kind in KINDS for c in reg.components[kind].values()]
    # columns as wide as the longest name and "plugin version", so long names and short versions stay aligned
    name_w = max((len(c.name) for c in every), default=0)
    by_w = max((len(f"{c.plugin} {c.version}") for c in every), default=0)
    for kind in KINDS:
        comps = reg.components[kind]
        click.echo(f"\n{kind}:")
        if not comps:
            click.echo("  (none)")
        for name, c in sorted(comps.items()):
            click.echo(f"  {name:<{name_w}}  {f'{c.plugin} {c.version}':<{by_w}}  {c.summary}".rstrip())
    for f in reg.failures:
        click.echo(f"\nfailed: plugin '{f.plugin}' at {f.stage}: {f.error}", err=True)
    for line in clashes:
        click.echo(f"\nclash: {line}", err=True)


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


# ------------------------------------------------------------------------------------------------------------ train
@cli.command()
@gin_options
@click.option("--data", multiple=True, required=True, help="Audio files, folders or list files to train on.")
@click.option("--valid", multiple=True, help="Validation audio (files, folders or lists).")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Run folder; re-running on the same folder resumes.")
@click.option("--no-progress", is_flag=True)
def train(gin_files, bindings, data, valid, out, no_progress) -> None:
    """Train a pipeline on audio: an autoencoder, or a temporal VAE end to end (e.g. the Clockwork VAE)."""
    from audiogen.training import train as run

    final = run(list(data), out, list(gin_files), list(bindings), valid=list(valid) or None,
                progress=not no_progress)
    _echo_once(f"wrote {final}")


@cli.command("train-prior")
@gin_options
@click.argument("data", type=click.Path(path_type=Path, exists=True))
@click.option("--valid", type=click.Path(path_type=Path, exists=True),
              help="Validation sequences (a latent dataset or .npy folder), scored with the training statistics.")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Run folder; re-running on the same folder resumes.")
@click.option("--no-progress", is_flag=True)
def train_prior(gin_files, bindings, data, valid, out, no_progress) -> None:
    """Train a prior on a latent dataset (from `audiogen encode`) or a folder of .npy sequences (T x D)."""
    from audiogen.prior_training import train_prior as run

    final = run(str(data), out, list(gin_files), list(bindings), valid=str(valid) if valid else None,
                progress=not no_progress)
    _echo_once(f"wrote {final}")


# ----------------------------------------------------------------------------------------------------------- encode
@cli.command()
@gin_options
@click.option("--ckpt", type=click.Path(path_type=Path), help="Trained pipeline (run folder or .ckpt).")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Latent dataset folder.")
@click.option("--strict", is_flag=True, help="Fail, listing every unreadable, truncated or clipped file (without it unreadable "
              "files are skipped, the others encoded; all are recorded in meta.json).")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at OUT.")
@click.option("--no-progress", is_flag=True)
def encode(gin_files, bindings, ckpt, inputs, out, strict, overwrite, no_progress) -> None:
    """Encode audio files, folders or list files into a latent dataset."""
    from audiogen import config
    from audiogen.audio.io import expand_inputs
    from audiogen.errors import ConfigError
    from audiogen.latents.encode import EncodeJob, run_encode
    from audiogen.pipeline import describe_pipeline, load_pipeline, refuse_untrained
    from audiogen.settings import audio_settings_for, encode_settings

    missing: list[dict] = []  # list entries that do not exist: skipped and recorded like unreadable files
    files = expand_inputs(list(inputs), missing)  # missing inputs fail before anything is built or written
    pipe, ck = load_pipeline(ckpt, gin_files, bindings)
    if pipe.encoder is None or pipe.latent_model is not None:
        raise ConfigError("encode needs an autoencoder pipeline; this one "
                          + ("has no encoder" if pipe.encoder is None else "is a temporal VAE (its encoder reads "
                             "coded audio and feeds the latent model)"),
                          fix="pass --ckpt of an autoencoder (e.g. trained with pipelines/conv_ae.gin)")
    if ck is None:
        refuse_untrained(pipe.encoder, "encoder")
    audio = audio_settings_for(pipe.encoder, "encoder")
    from audiogen.artifacts import sha256_file

    prov = describe_pipeline(pipe, audio)
    meta_prov = {
        "encoder": prov["components"].get("encoder"), "decoder": prov["components"].get("decoder"),
        "checkpoint": {"path": ck["path"], "sha256": sha256_file(Path(ck["path"]))} if ck else None,
        "built_components": prov["built_components"],
        "operative_config": config.operative_config(),
    }
    job = EncodeJob(pipe.encoder, files, out, audio, encode_settings(), meta_prov, strict=strict,
                    overwrite=overwrite, progress=not no_progress, failed=missing)
    t0 = time.perf_counter()
    meta = run_encode(job)
    if meta is None:  # another rank of a distributed encode: rank 0 reports
        return
    secs = time.perf_counter() - t0
    from audiogen.latents.record import LatentRecord

    rec = LatentRecord.from_meta(meta, out)
    click.echo(f"encoded {meta['num_files']} files ({meta['total_seconds']:.1f} s of audio, "
               f"{meta['total_frames']} frames of {rec.latent_size} dims at {rec.frame_rate:.2f} frames/s) into "
               f"{out} in {secs:.1f} s")
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
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Manifest CSV to write.")
@click.option("--strict", is_flag=True, help="Fail, listing every unreadable or truncated file, instead of skipping "
              "them.")
def index(inputs, out, strict) -> None:
    """Write a manifest CSV (path, frames, sample_rate, channels, subtype) of audio inputs. Every command takes it as
    an input list; training opens it without listing folders or probing files."""
    from audiogen.audio.io import bad_files_error, index_inputs
    from audiogen.audio.manifest import write_manifest

    failed: list[dict] = []
    infos = index_inputs(list(inputs), failed=failed)  # every input probed: --strict lists all bad ones
    if strict:  # a truncated copy fails as encode --strict fails it
        failed += [{"source": str(i.path), "reason": f"{i.path}: {w}"} for i in infos for w in i.warnings]
        if failed:
            raise bad_files_error(failed)
    if not infos:
        raise AudiogenError("no input file could be read:\n  " + "\n  ".join(e["reason"] for e in failed[:5]))
    write_manifest(out, infos)
    click.echo(f"indexed {len(infos)} files ({sum(i.duration for i in infos):.1f} s of audio) into {out}")
    for e in failed:
        click.echo(f"skipped: {e['reason']}", err=True)
    for i in infos:
        for w in i.warnings:
            click.echo(f"warning: {i.path}: {w}", err=True)


# ----------------------------------------------------------------------------------------------------------- decode
@cli.command()
@gin_options
@click.option("--ckpt", type=click.Path(path_type=Path),
              help="Pipeline whose decoder to use (default: the one recorded in the dataset's meta).")
@click.argument("latents", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Folder for the wav files.")
@click.option("--no-progress", is_flag=True)
def decode(gin_files, bindings, ckpt, latents, out, no_progress) -> None:
    """Decode latents (a latent dataset folder, or .npy/.safetensors files of shape (C, L)) to wav files."""
    from audiogen.latents.decode import (
        dataset_record,
        decode_to_files,
        decoder_pipeline,
        iter_latents,
    )
    from audiogen.settings import audio_settings_for

    pipe = decoder_pipeline(dataset_record(list(latents)), ckpt, gin_files, bindings)
    sr = audio_settings_for(pipe.decoder, "decoder").sample_rate
    from audiogen.progress import shown

    with shown(not no_progress):
        written = decode_to_files(pipe.decoder, iter_latents(list(latents), pipe.decoder.latent_size), out, sr)
    click.echo(f"wrote {len(written)} wav files to {out}")


# ---------------------------------------------------------------------------------------------------------- explore
@cli.group()
def explore() -> None:
    """Latent-space tools: interpolate between files, trajectories over chosen dimensions, means of encodings.
    Each writes NAME.npy latents (decodable with `audiogen decode`), NAME.wav and explore.json."""


def _autoencoder(ckpt, gin_files, bindings):
    from audiogen.latents.decode import decoder_pipeline

    pipe = decoder_pipeline(None, ckpt, gin_files, bindings)
    if pipe.encoder is None:
        from audiogen.errors import ConfigError

        raise ConfigError("exploring needs an autoencoder with an encoder", fix="pass --ckpt of an autoencoder")
    return pipe


def _encode_files(pipe, files) -> list:
    import torch

    from audiogen.audio.io import load_audio
    from audiogen.settings import audio_settings_for

    audio = audio_settings_for(pipe.encoder, "encoder")
    out = []
    with torch.no_grad():
        for f in files:
            x = load_audio(f, audio.sample_rate, channels=audio.channels, resample=audio.resample)
            out.append(pipe.encoder(torch.from_numpy(x)[None, None])[0].numpy())
    return out


def _explore_options(f):
    f = click.option("-o", "--out", type=click.Path(path_type=Path), required=True)(f)
    f = click.option("--ckpt", type=click.Path(path_type=Path), help="Autoencoder run (or use --gin for RAVE).")(f)
    return gin_options(f)


@explore.command("interpolate")
@_explore_options
@click.argument("a", type=click.Path(path_type=Path, exists=True))
@click.argument("b", type=click.Path(path_type=Path, exists=True))
@click.option("--steps", type=int, default=8, show_default=True)
@click.option("--slerp", is_flag=True, help="Spherical interpolation per frame.")
def explore_interpolate(gin_files, bindings, ckpt, out, a, b, steps, slerp) -> None:
    """Decode STEPS latent sequences on the way from the encoding of A to that of B."""
    from audiogen.latents.explore import interpolate, write_latents
    from audiogen.settings import audio_settings_for

    pipe = _autoencoder(ckpt, gin_files, bindings)
    za, zb = _encode_files(pipe, [a, b])
    items = interpolate(za, zb, steps, spherical=slerp)
    write_latents(items, out, pipe.decoder, audio_settings_for(pipe.decoder, "decoder").sample_rate,
                  {"tool": "interpolate", "a": str(a), "b": str(b), "steps": steps, "slerp": slerp})
    click.echo(f"wrote {len(items)} interpolations to {out}")


@explore.command("mean")
@_explore_options
@click.argument("inputs", nargs=-1, required=True)
def explore_mean(gin_files, bindings, ckpt, out, inputs) -> None:
    """Decode the frame-wise mean of the encodings of several files."""
    from audiogen.audio.io import expand_inputs
    from audiogen.latents.explore import mean_encoding, write_latents
    from audiogen.settings import audio_settings_for

    files = expand_inputs(list(inputs))
    pipe = _autoencoder(ckpt, gin_files, bindings)
    items = mean_encoding(_encode_files(pipe, files))
    write_latents(items, out, pipe.decoder, audio_settings_for(pipe.decoder, "decoder").sample_rate,
                  {"tool": "mean", "inputs": [str(f) for f in files]})
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
@click.option("--seconds", type=float, default=3.0, show_default=True)
@click.option("--grid-steps", type=int, default=5, show_default=True)
def explore_trajectory(gin_files, bindings, ckpt, out, shape, dims, radius, around, stats_from, seconds,
                       grid_steps) -> None:
    """Decode a line, a circle or a grid of points over chosen latent dimensions."""
    import math

    import numpy as np

    from audiogen.latents.dataset import read_meta
    from audiogen.latents.explore import trajectory, write_latents
    from audiogen.settings import audio_settings_for

    pipe = _autoencoder(ckpt, gin_files, bindings)
    sr, C = audio_settings_for(pipe.decoder, "decoder").sample_rate, pipe.latent_size
    mean, scale = np.zeros(C, np.float32), np.ones(C, np.float32)
    if stats_from:
        from audiogen.latents.record import LatentRecord

        rec = LatentRecord.from_meta(read_meta(stats_from), stats_from)
        rec.check_decoder(pipe.decoder, str(ckpt or "the given config"), sr)  # its statistics are in these units
        if ckpt:
            from audiogen.artifacts import load_checkpoint

            rec.check_made_by(load_checkpoint(ckpt)["path"], fix="pass --stats-from latents encoded with --ckpt "
                              "(or leave it out: origin 0, unit 1)")
        mean, scale = np.asarray(rec.stats["mean"], np.float32), np.asarray(rec.stats["std"], np.float32)
    if around:
        base = _encode_files(pipe, [around])[0]
    else:
        base = np.repeat(mean[:, None], math.ceil(seconds * sr / pipe.hop), 1)
    items = trajectory(shape, base, list(dims), radius, scale, steps=grid_steps)
    write_latents(items, out, pipe.decoder, sr, {"tool": "trajectory", "shape": shape, "dims": list(dims),
                                                 "radius": radius, "around": str(around) if around else None,
                                                 "stats_from": str(stats_from) if stats_from else None})
    click.echo(f"wrote {len(items)} trajectory decodes to {out}")


# --------------------------------------------------------------------------------------------------------- evaluate
@cli.command()
@gin_options
@click.argument("ckpt", type=click.Path(path_type=Path, exists=True))
@click.option("--data", multiple=True, required=True,
              help="Audio files, folders or list files to score (whole files); a latent dataset for a prior run.")
@click.option("--iw", "iw_samples", type=int, default=1, show_default=True,
              help="Importance samples K for the importance-weighted bound (1: ELBO only).")
@click.option("--segment-seconds", type=float, default=10.0, show_default=True,
              help="Score long files in segments of this length with the state carried across (0: whole).")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Folder for evaluation.json and evaluation.md.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quality-samples", type=click.IntRange(min=0),
              help="Prior runs: sequences sampled for the Fréchet distances to --data (default 8; 0: skip).")
@click.option("--no-progress", is_flag=True)
def evaluate(gin_files, bindings, ckpt, data, iw_samples, segment_seconds, out, seed, quality_samples,
             no_progress) -> None:
    """Likelihood in bits per frame: total -log2 p (bound) over all files / total audio samples. For a prior run
    (`train-prior`), --data is a latent dataset: its held-out score (nats and bits per frame and per dimension, or
    the denoising loss per noise level for diffusion priors)."""
    from audiogen.artifacts import atomic_write_json, atomic_write_text, load_checkpoint
    from audiogen.audio.io import expand_inputs
    from audiogen.errors import ConfigError
    from audiogen.evaluate import evaluate as run
    from audiogen.evaluate import flac_bits_per_sample, flac_from_manifest, markdown
    from audiogen.pipeline import load_pipeline
    from audiogen.settings import audio_settings

    ck = load_checkpoint(ckpt)
    if ck["audiogen"].get("kind") == "prior":
        from audiogen import prior_evaluation

        if len(data) != 1 or gin_files or bindings:
            raise ConfigError(f"{ckpt} is a prior: evaluate it on one latent dataset, without --gin/--bind",
                              fix=f"audiogen evaluate {ckpt} --data LATENTS")
        result = prior_evaluation.evaluate_prior(ck, data[0], seed=seed, quality_samples=(
            prior_evaluation.QUALITY_SAMPLES if quality_samples is None else quality_samples))
        table = prior_evaluation.markdown(result)
        click.echo(table)
        if out:
            atomic_write_json(out / "evaluation.json", result)
            atomic_write_text(out / "evaluation.md", table)
            click.echo(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.md'}")
        return
    files = expand_inputs(list(data))
    pipe, ck = load_pipeline(ck, gin_files, bindings)
    audio = audio_settings()
    sr = audio.sample_rate
    result = run(pipe, files, sr, segment_seconds=segment_seconds, iw_samples=iw_samples, seed=seed,
                 progress=not no_progress, channels=audio.channels, resample=audio.resample)
    flac = flac_bits_per_sample(files, sr)
    if flac[0] is None:
        manifest = flac_from_manifest(files)
        flac = manifest if manifest[0] is not None else (None, f"{flac[1]}; {manifest[1]}")
    result["flac_bits_per_sample"], result["flac_source"] = flac
    result["checkpoint"], result["global_step"] = ck["path"], ck["audiogen"].get("global_step")
    table = markdown(result, flac)
    click.echo(table)
    if out:
        atomic_write_json(out / "evaluation.json", result)
        atomic_write_text(out / "evaluation.md", table)
        click.echo(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.md'}")


# ------------------------------------------------------------------------------------------------------------ probe
@cli.command()
@gin_options
@click.argument("source", type=click.Path(path_type=Path, exists=True))
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
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Folder for probe.json, probe.md and the LDA plots.")
@click.option("--no-progress", is_flag=True)
def probe(gin_files, bindings, source, labels_csv, label_cols, where, ks, lda_dims, folds, no_mel, n_mels, limit,
          out, no_progress) -> None:
    """What the latents capture: leave-one-out kNN accuracy per label and 2-D LDA plots of time-averaged
    representations, per level of a checkpoint (or of a latent dataset), against log-mel features."""
    from audiogen import __version__
    from audiogen.artifacts import atomic_write_json, atomic_write_text
    from audiogen.errors import ConfigError
    from audiogen.probe import (
        dataset_representations,
        markdown,
        model_representations,
        read_labels,
    )
    from audiogen.probe import probe as run

    conditions = {}
    for w in where:
        if "=" not in w:
            raise ConfigError(f"--where {w!r} is not COL=VALUE", fix="e.g. --where split=test")
        col, val = w.split("=", 1)
        conditions[col.strip()] = val
    items, labels = read_labels(labels_csv, list(label_cols), conditions, limit)
    from audiogen.progress import shown

    if (source / "meta.json").is_file():
        with shown(not no_progress):
            reps = dataset_representations(source, items, not no_mel, n_mels)
        made_from = {"latent_dataset": str(source.resolve())}
    else:
        from audiogen.pipeline import load_pipeline
        from audiogen.settings import audio_settings_for

        pipe, ck = load_pipeline(source, gin_files, bindings)
        with shown(not no_progress):
            reps = model_representations(pipe, items, audio_settings_for(pipe.encoder, "encoder"), not no_mel,
                                         n_mels)
        made_from = {"checkpoint": ck["path"], "global_step": ck["audiogen"].get("global_step"),
                     "kind": ck["audiogen"].get("kind")}
    results = run(reps, items, labels, sorted(set(ks)), out, lda_dims, folds)
    results.update(made_from, labels_csv=str(labels_csv.resolve()), where=conditions, audiogen=__version__)
    table = markdown(results)
    click.echo(table)
    atomic_write_json(out / "probe.json", results)
    atomic_write_text(out / "probe.md", table)
    click.echo(f"wrote {out / 'probe.json'}, {out / 'probe.md'} and {len(list(out.glob('lda_*.png')))} LDA plots")


# ----------------------------------------------------------------------------------------------- sample, reconstruct
@cli.command()
@gin_options
@click.argument("ckpt", type=click.Path(path_type=Path, exists=True))
@click.option("-n", "num", type=click.IntRange(min=1), default=4, show_default=True, help="Number of samples.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("samples"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mean", is_flag=True, help="Write the output distribution's mean instead of sampling it.")
@click.option("--frames", type=click.IntRange(min=1), help="Length in frames (priors over sequences without audio).")
@click.option("--decoder-ckpt", type=click.Path(path_type=Path),
              help="Prior samples: autoencoder to decode with (default: the one the prior's dataset names).")
@click.option("--no-progress", is_flag=True)
def sample(gin_files, bindings, ckpt, num, seconds, out, seed, mean, frames, decoder_ckpt, no_progress) -> None:
    """Unconditional samples from a temporal VAE, or from a prior (decoded with its dataset's autoencoder):
    wavs, PNGs and samples.json (with diagnostics for priors)."""
    from audiogen.artifacts import load_checkpoint
    from audiogen.pipeline import load_pipeline
    from audiogen.progress import shown

    ck = load_checkpoint(ckpt)  # read once: it says which kind of sampling applies
    if ck["audiogen"].get("kind") == "prior":
        from audiogen.prior_sampling import sample_prior

        with shown(not no_progress):
            rec = sample_prior(ck, out, num, seconds, frames, seed, gin_files, bindings, decoder_ckpt=decoder_ckpt)
        # its warnings were logged once by sample_prior (and are kept in samples.json)
        click.echo(f"wrote {num} samples ({rec['frames']} frames each) and samples.png to {out}")
        if "quality" in rec["diagnostics"]:
            from audiogen.quality import summary

            click.echo(summary(rec["diagnostics"]["quality"], "the prior's dataset"))
        return
    from audiogen.sampling import write_samples
    from audiogen.settings import audio_settings

    pipe, ck = load_pipeline(ck, gin_files, bindings)
    with shown(not no_progress):
        paths = write_samples(pipe, ck, out, num, seconds, audio_settings().sample_rate, seed, mean=mean)
    click.echo(f"wrote {len(paths)} samples and samples.png to {out}")


@cli.command()
@gin_options
@click.argument("ckpt", type=click.Path(path_type=Path, exists=True))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("reconstructions"), show_default=True)
@click.option("--mean", is_flag=True,
              help="Write the output distribution's mean instead of a sample (for mu-law audio the mean of a "
                   "broad, sign-symmetric prediction is near silence; samples keep the envelope).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True)
def reconstruct(gin_files, bindings, ckpt, inputs, out, mean, seed, no_progress) -> None:
    """Posterior reconstructions of audio files: wavs and a comparison PNG."""
    from audiogen.audio.io import expand_inputs
    from audiogen.pipeline import load_pipeline
    from audiogen.sampling import reconstruct_files
    from audiogen.settings import audio_settings

    files = expand_inputs(list(inputs))
    pipe, ck = load_pipeline(ckpt, gin_files, bindings)
    from audiogen.progress import shown

    with shown(not no_progress):
        paths = reconstruct_files(pipe, ck, files, out, audio_settings(), mean=mean, seed=seed)
    click.echo(f"wrote {len(paths)} reconstructions and reconstructions.png to {out}")


# ----------------------------------------------------------------------------------------------------------- export
@cli.command()
@click.argument("run", type=click.Path(path_type=Path, exists=True))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="TorchScript file to write (.ts).")
@click.option("--window-frames", type=click.IntRange(min=2),
              help="DiffWave priors: frames generated per window (default: the crop the prior was trained on).")
@click.option("--context-frames", type=click.IntRange(min=0),
              help="DiffWave priors: frames of the previous window each window continues (default: a quarter).")
@click.option("--steps", type=click.IntRange(min=1),
              help="DiffWave priors: DDIM steps per window (default: audiogen.export.DEFAULT_STEPS, 10).")
def export(run, out, window_frames, context_frames, steps) -> None:
    """One TorchScript file for nn~ (Max/MSP, Pure Data): encode/decode/forward of an autoencoder run, plus a
    streaming `prior` method for a prior run on a latent dataset (e.g. RAVE latents)."""
    from audiogen.export import export_run

    rec = export_run(run, out, window_frames, context_frames, steps)
    click.echo(f"wrote {out}: {rec['kind']} export with methods {', '.join(rec['methods'])} "
               f"({rec['sample_rate']} Hz, {rec['latent_size']} latent dims, hop {rec['hop']})")


# ------------------------------------------------------------------------------------------------------------- info
@cli.command()
@click.argument("path", type=click.Path(path_type=Path))  # describe() names an interrupted encode or a missing path
@click.option("--json", "as_json", is_flag=True)
def info(path: Path, as_json: bool) -> None:
    """Describe a latent dataset or checkpoint from its recorded metadata."""
    from audiogen.describe import describe

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
@click.option("--data", type=click.Path(path_type=Path, exists=True),
              help="Your own audio folder or list (default: a synthesised speech-like corpus).")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("audiogen-quickstart"),
              show_default=True)
@click.option("--steps", type=int, default=None, help="Training steps (default from the gin file's quickstart).")
@click.option("--bind", "bindings", multiple=True, help="Extra gin bindings for training.")
@click.option("--no-progress", is_flag=True)
def quickstart(data, out, steps, bindings, no_progress) -> None:
    """Synthesise a corpus (or use --data), train a small autoencoder, encode, decode, and compare."""
    from audiogen.quickstart import run_quickstart

    run_quickstart(cli, data, out, steps, list(bindings), echo=click.echo, progress=not no_progress)


def _rank_zero_or_error(record: logging.LogRecord) -> bool:
    from audiogen.distributed import is_main_process

    return record.levelno >= logging.ERROR or is_main_process()


# commands that run no model: they skip the CPU measurement of audiogen.cpu
_NO_COMPUTE = ("info", "plugins", "configs", "index")


def main(argv=None) -> None:
    from audiogen.cpu import apply_cpu_defaults

    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] not in _NO_COMPUTE and not {"-h", "--help", "--version"} & set(args):
        apply_cpu_defaults()  # threads and OpenMP spinning for a shared machine (0.2 s): before torch loads
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


def run_command(args: list[str], echo=print) -> None:
    """Run an audiogen command in-process, printing it first (used by quickstart so users can copy it)."""
    echo("$ audiogen " + shlex.join(args))
    cli.main(args=args, prog_name="audiogen", standalone_mode=False)


if __name__ == "__main__":  # python -m audiogen.cli
    main()
