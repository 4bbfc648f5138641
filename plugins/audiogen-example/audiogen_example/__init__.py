"""audiogen-example: an audiogen plugin."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("audiogen-example")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
