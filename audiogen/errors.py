"""Errors a user can act on. The CLI prints them without a traceback and exits with code 2."""

from __future__ import annotations


class AudiogenError(Exception):
    """Base for errors that carry a message meant for the user (what, where, and how to fix it)."""

    def __init__(self, message: str, *, path=None, fix: str | None = None):
        self.path = path
        self.fix = fix
        text = message
        if path is not None and str(path) not in message:
            text = f"{path}: {message}"
        if fix:
            text = f"{text}\n  fix: {fix}"
        super().__init__(text)


class AudioFileError(AudiogenError):
    """An input audio file is missing, empty, corrupt, not audio, or does not fit the configured policy."""


class ConfigError(AudiogenError):
    """A gin file, binding or component name is wrong."""


class PluginError(AudiogenError):
    """Plugins conflict (duplicate component names) or a requested component does not exist."""


class ArtifactError(AudiogenError):
    """A latent dataset, checkpoint or sample folder is missing, incomplete, or of an unknown format."""


class WriteFailed(ArtifactError):
    """Writing an artifact failed part way (disk full, file too large, read-only); what was finished is kept so
    that re-running the same command resumes."""


class TrainingDiverged(AudiogenError):
    """The loss became NaN or inf; the last good checkpoint is kept."""
