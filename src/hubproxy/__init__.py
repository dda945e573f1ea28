"""hubproxy: a self-hosted Hugging Face Hub: caching proxy, private hub, governance."""

from importlib import metadata

__version__ = "0.1.0"


def version() -> str:
    """The installed distribution's version (what `pip` installed), else the source tree's."""
    try:
        return metadata.version("hubproxy")
    except metadata.PackageNotFoundError:
        return __version__
