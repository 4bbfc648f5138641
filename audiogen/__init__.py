"""audiogen: generative modelling of audio with latent variable models.

Data flow: ``encoders`` (audio -> latent frames) -> ``priors`` (models of latent sequences)
-> ``decoders`` (latent frames -> audio), composed by gin files and run through the ``audiogen`` CLI.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from audiogen.hookspecs import hookimpl

try:
    __version__ = _version("audiogen")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["hookimpl", "__version__"]
