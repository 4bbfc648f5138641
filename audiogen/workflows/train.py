"""``audiogen train`` for autoencoder and temporal-VAE pipelines, on Lightning (the run folder, resume and
``--overwrite``: :mod:`audiogen.training.run`)."""

from __future__ import annotations

from pathlib import Path

from audiogen.audio.io import drop_run_index, run_index
from audiogen.errors import AudioFileError
from audiogen.pipeline import build_pipeline, describe_pipeline
from audiogen.settings import audio_settings
from audiogen.training.loaders import audio_loader
from audiogen.training.module import PipelineModule
from audiogen.training.run import fit, locks_run_folder, start_run


@locks_run_folder
def train(data: list[str], out: Path, gin_files: list[str], bindings: list[str], valid: list[str] | None = None,
          progress: bool = True, overwrite: bool = False) -> Path:
    """Train the gin-configured pipeline; returns the path of ``model.ckpt``. Re-running on ``out`` resumes;
    ``overwrite`` deletes what ``out`` holds and starts at step 0."""
    out = Path(out)
    resume, s = start_run(out, gin_files, bindings, "pipelines/conv_ae.gin (or another pipeline)", overwrite)
    audio = audio_settings()
    pipe = build_pipeline(check_plugins=True)  # a plugin's schedule etc. breaking its contract: one error
    provenance = describe_pipeline(pipe, audio)
    resuming = resume is not None
    train_files = run_index(out, "train", data, resuming)  # written on the first start, reused on resume
    valid_files = run_index(out, "valid", valid, resuming) if valid else None
    module = PipelineModule(pipe, s, provenance)
    train_loader = audio_loader(train_files, audio, s, pipe.hop, train=True)
    valid_loader = audio_loader(valid_files, audio, s, pipe.hop, train=False) if valid_files else None
    from audiogen.listen import listen_callbacks, pipeline_listener

    listen = listen_callbacks(lambda ls: pipeline_listener(pipe, valid_files or train_files, audio, ls), s.val_every,
                              out)
    try:
        return fit(module, out, s, train_loader, valid_loader, resume, progress, listen)
    except AudioFileError:
        # the index lists the file the user is now told to repair or remove: the next start indexes the inputs again
        drop_run_index(out)
        raise
