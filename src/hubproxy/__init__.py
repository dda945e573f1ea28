"""hubproxy: a self-hosted Hugging Face Hub: caching proxy, private hub, governance."""

__version__ = "0.1.0"
