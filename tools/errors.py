"""Errors of the ways in (CLI, servers) a user can hit: one sentence each."""

from __future__ import annotations

from tempo.errors import TempoError


class MCPConfigError(TempoError):
    """A server configuration that would be unsafe or cannot work."""
