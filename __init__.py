"""Tempo: a streaming video agent with persistent memory."""

from tempo._version import __version__
from tempo.errors import TempoError

__all__ = ["TempoError", "__version__"]
