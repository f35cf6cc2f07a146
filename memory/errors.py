"""Errors the memory layer raises for problems a user can fix: one sentence each."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import ParamSpec, TypeVar

import redis
from tempo.errors import ConflictError, InvalidInputError, NotFoundError, UnavailableError, redact_secrets


class MemoryUnavailableError(UnavailableError):
    """Redis cannot be reached or is not usable (bad URL, refused connection, wrong password)."""


class UnknownStreamError(NotFoundError):
    """A stream name that the memory does not hold; the message lists the streams it does hold."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = sorted(known)
        listed = ", ".join(names) if names else "none yet (ingest a source with `tempo ingest`)"
        super().__init__(f"unknown stream {name!r}; known streams: {listed}")
        self.name = name
        self.known = names


class InvalidStreamNameError(InvalidInputError):
    """Stream names become Redis key parts and file names, so they are restricted."""


class StreamSettingsMismatchError(InvalidInputError):
    """Resuming a stream with settings (model, fps, window, token shape) other than it was created with."""


class OutOfOrderCommitError(ConflictError):
    """A segment was committed with a gap after the stream's last committed segment."""

    exit_code = 3


class SegmentNotFoundError(NotFoundError, KeyError):
    """A segment index outside the stream's retained range."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidRuleError(InvalidInputError):
    """A monitoring rule with a bad value (empty text, threshold outside [0, 1], bad webhook URL)."""


class UnknownRuleError(NotFoundError):
    """A rule id that the memory does not hold."""


class UnknownAlertError(NotFoundError):
    """An alert id that the memory does not hold."""


class InvalidTimeError(InvalidInputError):
    """A time that is neither Unix seconds, an ISO 8601 time nor a duration such as 30m."""


class StreamBusyError(ConflictError):
    """The stream is being written already: another ingest holds its writer lease (one writer per stream),
    or `tempo serve` already runs an ingest job for it."""


class SourceChangedError(InvalidInputError):
    """A file source no longer is the file the stream was ingested from (size, time or content)."""


class RecompressError(InvalidInputError):
    """The frames of a stored segment cannot be read back (its source file moved or changed)."""


class SourceMismatchError(InvalidInputError):
    """A stream is resumed from another source than the one it was created from."""


class JobError(InvalidInputError):
    """A work-queue job could not be decoded or processed (it is retried, then dead-lettered)."""


class ColdStorageError(UnavailableError):
    """The cold tier's storage (a directory or an fsspec URL) cannot be used: unknown URL scheme,
    its package not installed, or an I/O error."""


class ColdShardMissingError(ColdStorageError):
    """A cold-tier shard a segment points to is gone."""


class ColdShardCorruptError(ColdStorageError):
    """A cold-tier record fails its checksum (or its header does not match the pointer to it)."""


class ClusterNotReadyError(MemoryUnavailableError):
    """The URL names a Redis Cluster node, but the cluster cannot serve every key (slots unassigned,
    nodes down or not yet introduced to each other)."""


P = ParamSpec("P")
R = TypeVar("R")


def is_disk_error(message: str) -> bool:
    """Redis refuses writes after a failed AOF write or RDB save (MISCONF; "-ERR ... disk")."""
    text = message.lower()
    return text.startswith("misconf") or "aof" in text or "disk" in text


def redis_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a lost connection into one sentence instead of a redis-py traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailableError(f"lost the connection to Redis: {redact_secrets(str(exc))}") from exc
        except redis.ResponseError as exc:
            if is_disk_error(str(exc)):
                raise MemoryUnavailableError(
                    "Redis cannot write to its disk (it is full or failing), so nothing more can be "
                    "stored; free space where Redis keeps its data, then run the same command again"
                ) from exc
            if "maxmemory" in str(exc) or str(exc).startswith("OOM"):
                raise MemoryUnavailableError(
                    "Redis is out of memory (maxmemory reached); raise its maxmemory or set a "
                    "retention policy on the streams"
                ) from exc
            raise

    return wrapper
