"""A stream's writer lease held for the length of one run: one writer per stream.

An ingest (engine/ingest.py) or a producer (engine/producer.py) takes the stream's writer lease in
Redis (`RedisMemoryStore.acquire_writer`) before it opens the source, a daemon thread renews it every
third of its lifetime, and it is released at the end; after a crash it expires `seconds` later.
Every commit is checked against the lease's token, so a second writer meanwhile fails with
StreamBusyError instead of interleaving its segments.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from tempo.errors import TempoError
from tempo.memory.store import RedisMemoryStore
from tempo.settings import environment

log = logging.getLogger(__name__)

# Seconds a writer lease lives without renewal: how long a crashed ingest blocks the next one.
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds_from_env() -> float:
    """$TEMPO_WRITER_LEASE (seconds), else DEFAULT_LEASE_SECONDS."""
    raw = environment().writer_lease
    try:
        value = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        value = DEFAULT_LEASE_SECONDS
    return value if 0.5 <= value <= 86400 else DEFAULT_LEASE_SECONDS


class WriterLease:
    """The stream's writer lease, renewed by a daemon thread every third of its lifetime (seconds)."""

    def __init__(self, store: RedisMemoryStore, stream: str, seconds: float, token: str | None = None) -> None:
        self.store, self.stream, self.seconds = store, stream, seconds
        self.token = store.acquire_writer(stream, seconds, token)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="tempo-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.store.renew_writer(self.stream, self.token, self.seconds):
                    log.warning("lost the writer lease of stream %r; its commits will be refused", self.stream)
                    return
            except TempoError as exc:  # Redis unreachable: commits will fail and say so
                log.warning("could not renew the writer lease of stream %r: %s", self.stream, exc)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        with contextlib.suppress(TempoError):  # else it expires on its own
            self.store.release_writer(self.stream, self.token)
