"""A stream's writer lease held for the length of one run: one writer per stream.

An ingest (engine/ingest.py) or a producer (engine/producer.py) takes the stream's writer lease in
Redis before it opens the source, a daemon thread renews it every third of its lifetime, and it is
released at the end; after a crash it expires `seconds` later. Every commit is checked against the
lease's token, so a second writer meanwhile fails with StreamBusyError instead of interleaving its
segments.

The lease names its holder (memory/holder.py: host identity, pid, process start time) in a key
beside it (`…:writer:holder`, same lifetime). A run that finds the lease held:
- takes it over at once when the holder is on this host and provably dead (a crashed ingest
  restarted by a supervisor), by one compare-and-set on the lease and its holder, so of two runs
  restarted together only one wins; it says so in one line;
- otherwise (the holder is alive, on another host, or unknown) waits for it, showing a countdown,
  up to `wait` seconds (default: one lease period), then fails with StreamBusyError in one sentence;
  `wait=0` refuses at once.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid

from tempo.errors import TempoError
from tempo.memory.cluster import Script
from tempo.memory.errors import StreamBusyError, redis_errors
from tempo.memory.holder import Holder
from tempo.memory.store import RedisMemoryStore
from tempo.settings import environment

log = logging.getLogger(__name__)

# Seconds a writer lease lives without renewal: how long a crashed ingest on another host blocks the next one.
DEFAULT_LEASE_SECONDS = 30.0
POLL_SECONDS = 0.25  # how often a waiting run looks at the lease again

# KEYS: lease, holder. ARGV: token, milliseconds, holder JSON. Takes a free lease; 1 taken, 0 held.
ACQUIRE = """#!lua
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease, holder. ARGV: the token and holder JSON seen, new token, milliseconds, new holder JSON.
# Compare-and-set: takes the lease over only while both are still what the caller saw (1), else 0.
TAKEOVER = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
  return 1
end
return 0
"""

# KEYS: lease, holder. ARGV: token, milliseconds. Extends both while the lease is ours (1), else 0.
RENEW = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, holder. ARGV: token. Deletes both while the lease is ours.
RELEASE = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_seconds_from_env() -> float:
    """$TEMPO_WRITER_LEASE (seconds), else DEFAULT_LEASE_SECONDS."""
    raw = environment().writer_lease
    try:
        value = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        value = DEFAULT_LEASE_SECONDS
    return value if 0.5 <= value <= 86400 else DEFAULT_LEASE_SECONDS


def holder_key(store: RedisMemoryStore, stream: str) -> str:
    """The key naming the holder of `stream`'s writer lease (same hash tag as the lease)."""
    return f"{store.keys.writer(stream)}:holder"


class _Scripts:
    def __init__(self, store: RedisMemoryStore) -> None:
        client = store.client
        self.acquire, self.takeover = Script(client, ACQUIRE), Script(client, TAKEOVER)
        self.renew, self.release = Script(client, RENEW), Script(client, RELEASE)


class _Countdown:
    """The visible wait: one line on stderr, redrawn in place on a terminal, else every 5 s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.tty = enabled, enabled and sys.stderr.isatty()
        self.last: float | None = None

    def show(self, stream: str, who: str, left: float) -> None:
        if not self.enabled or (not self.tty and self.last is not None and self.last - left < 5.0):
            return
        self.last = left
        line = f"tempo: waiting for stream {stream!r}'s writer lease, held by {who}: {left:.0f} s left"
        print(f"\r{line}\033[K" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and self.last is not None:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


class WriterLease:
    """The stream's writer lease, renewed by a daemon thread every third of its lifetime (seconds).

    `token`: the token to hold it under (a queue producer's jobs carry it; default: a new one).
    `wait`: seconds to wait for a lease another live writer holds (None: one lease period; 0: refuse
    at once). `progress`: show the countdown while waiting. `stop`: ends a wait early (StreamBusyError)."""

    def __init__(
        self,
        store: RedisMemoryStore,
        stream: str,
        seconds: float,
        token: str | None = None,
        *,
        wait: float | None = None,
        progress: bool = True,
        stop: threading.Event | None = None,
    ) -> None:
        self.store, self.stream, self.seconds = store, stream, seconds
        self._keys = [store.keys.writer(stream), holder_key(store, stream)]
        self._scripts = _Scripts(store)
        self.token = token or uuid.uuid4().hex
        self.took_over: Holder | None = None  # the dead holder this lease was taken from
        self._take(seconds if wait is None else max(0.0, wait), progress, stop)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="tempo-lease", daemon=True)
        self._thread.start()

    @property
    def _ms(self) -> int:
        return max(1, int(self.seconds * 1000))

    @redis_errors
    def _take(self, wait: float, progress: bool, stop: threading.Event | None) -> None:
        mine = Holder.me(self.token).to_json()
        deadline = time.monotonic() + wait
        countdown = _Countdown(progress and wait > 0)
        try:
            while True:
                if self._scripts.acquire(keys=self._keys, args=[self.token, self._ms, mine]):
                    return
                seen_token, seen_holder = self.store.client.mget(self._keys)
                if seen_token is None:
                    continue  # released or expired meanwhile: try again at once
                holder = Holder.from_json(seen_holder)
                if holder is not None and holder.token != seen_token.decode():
                    holder = None  # a leftover of an earlier holder: the present one is unknown
                if holder is not None and holder.provably_dead():
                    if self._scripts.takeover(keys=self._keys,
                                              args=[seen_token, seen_holder, self.token, self._ms, mine]):
                        self.took_over = holder
                        countdown.close()
                        log.warning("stream %r: took over the writer lease of %s, which is no longer running",
                                    self.stream, holder.describe())
                        return
                    continue  # another run took it first, or it changed: look again
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    raise StreamBusyError(self._busy(holder, wait))
                countdown.show(self.stream, holder.describe() if holder else "another process", left)
                if stop is not None:
                    stop.wait(min(POLL_SECONDS, left))
                else:
                    time.sleep(min(POLL_SECONDS, left))
        finally:
            countdown.close()

    def _busy(self, holder: Holder | None, waited: float) -> str:
        if waited <= 0:
            left = self.store.client.pttl(self._keys[0])  # milliseconds; < 0: expired meanwhile
            return RedisMemoryStore.busy_message(self.stream, left / 1000 if left > 0 else None)
        who = f" ({holder.describe()})" if holder is not None else ""
        return (f"stream {self.stream!r} is being ingested by another process{who}, and its writer lease "
                f"was still held after waiting {waited:.1f} s; wait for that ingest to finish, or run "
                "again with a longer --lease-wait")

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if self._call(self._scripts.renew, [self.token, self._ms]):
                    continue
                # Gone: expired while Redis was away (a restart) or taken. Free again, it is ours again.
                if self._call(self._scripts.acquire, [self.token, self._ms, Holder.me(self.token).to_json()]):
                    log.warning("took the writer lease of stream %r back (it had expired meanwhile)", self.stream)
                    continue
                log.warning("lost the writer lease of stream %r; its commits will be refused", self.stream)
                return
            except TempoError as exc:  # Redis unreachable: commits will fail and say so
                log.warning("could not renew the writer lease of stream %r: %s", self.stream, exc)

    @redis_errors
    def _call(self, script: Script, args: list[object]) -> int:
        return int(script(keys=self._keys, args=args))

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        with contextlib.suppress(TempoError):  # else it expires on its own
            self._call(self._scripts.release, [self.token])
