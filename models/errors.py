"""Errors of the model layer a user can hit (missing or broken weights): one sentence each."""

from __future__ import annotations

from tempo.errors import UnavailableError


class ModelNotAvailableError(UnavailableError):
    """The model is neither a local directory nor in the local cache, and we never download."""


class CheckpointError(UnavailableError):
    """A checkpoint directory exists but is incomplete or inconsistent."""


class EmbedderLoadError(UnavailableError):
    """The embedder directory is missing or incomplete."""
