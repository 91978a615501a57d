"""Sentiment inference service (FastAPI + dynamic micro-batching)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sentiment-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
