"""Webhook delivery of alert events: a consumer group on the alert event stream.

Every event (opened, verified, closed) of a rule with `--webhook URL` is POSTed there as JSON:

    Content-Type: application/json
    Idempotency-Key: <alert id> for the opening, <alert id>#verified / <alert id>#closed for updates
    X-Tempo-Event: opened | verified | closed
    X-Tempo-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, key $TEMPO_WEBHOOK_SECRET>

Hostile receivers and URLs (issue 26, tempo.agent.monitoring.webhook_http): the receiver's addresses are
checked against the network policy at each delivery, redirects are not followed (a 3xx is a failure),
each POST has a total deadline, and receivers are served concurrently (one thread per receiver at a
time, at most `concurrency` at once), so a slow or dead receiver delays only its own events, in order.

At least once: an event is acknowledged in the group only after a 2xx answer (or after it is
dead-lettered), so a deliverer that dies leaves it pending and another one claims it after
`claim_idle` seconds; receivers de-duplicate by Idempotency-Key. A failed POST is retried after
backoff·2^(attempt−1) seconds (capped); after `max_attempts` failures the event goes to the
dead-letter list. `tempo alerts deliveries` shows pending retries, dead letters and recent deliveries.

Where it runs: a thread during `tempo ingest` (`start_delivery_thread`), the same function for a
long-running server, and `tempo alerts deliver` standalone. Any number may run: the group shares
the events among them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from tempo import settings as tempo_settings
from tempo.agent.errors import WebhookSecretError
from tempo.agent.monitoring import webhook_http
from tempo.errors import redact_secrets, redact_url
from tempo.memory.alerts import AlertStore, delivery_key, parse_alert
from tempo.memory.errors import MemoryUnavailableError, redis_errors
from tempo.settings import ENV_WEBHOOK_SECRET, environment

log = logging.getLogger(__name__)

SECRET_ENV = ENV_WEBHOOK_SECRET
SIGNATURE_HEADER = "X-Tempo-Signature"
GROUP = "webhooks"
LOG_LENGTH = 1000  # recent successful deliveries kept for `tempo alerts deliveries`
MIN_SECRET_CHARS = 16  # as the HTTP servers' bearer tokens


def webhook_secret() -> bytes:
    """$TEMPO_WEBHOOK_SECRET as bytes, or WebhookSecretError (unset, blank, or under 16 characters)."""
    secret = environment().webhook_secret
    if secret is None:
        raise WebhookSecretError(
            f"set {SECRET_ENV} to the secret shared with the webhook receivers; deliveries are signed with it"
        )
    if not secret.strip():
        raise WebhookSecretError(f"{SECRET_ENV} is blank; set it to a long random secret shared with the receivers")
    if len(secret) < MIN_SECRET_CHARS:
        raise WebhookSecretError(
            f"{SECRET_ENV} is shorter than {MIN_SECRET_CHARS} characters; use a long random secret"
        )
    return secret.encode()


def sign(secret: bytes, body: bytes) -> str:
    """The X-Tempo-Signature value: `sha256=` + hex HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def event_body(event: dict[str, Any]) -> bytes:
    """The POST body of an event: its alert fields and `event`, as compact sorted JSON."""
    return json.dumps(
        {k: v for k, v in event.items() if k != "webhook"}, sort_keys=True, separators=(",", ":")
    ).encode()


@dataclass(frozen=True)
class DeliverySettings:
    max_attempts: int = 8  # failures before the dead-letter list
    backoff: float = 1.0  # seconds before the first retry, doubled at each further failure
    max_backoff: float = 300.0  # seconds
    timeout: float = 10.0  # seconds for a whole POST (connect, send, answer), however slowly bytes come
    claim_idle: float = 60.0  # seconds an event may sit with a silent deliverer before another takes it
    concurrency: int = 8  # receivers served at once (each receiver's events one after another, in order)
    deny_private: bool | None = None  # refuse loopback/private receivers; None: $TEMPO_DENY_PRIVATE_NETWORKS


def _receiver(url: str) -> str:
    """The receiver an event goes to (scheme, host, port): its events are delivered one at a time."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url


class WebhookDeliverer:
    """One member of the delivery group."""

    def __init__(
        self,
        alerts: AlertStore,
        secret: bytes,
        *,
        settings: DeliverySettings | None = None,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alerts = alerts
        self.client = alerts.client
        self.secret = secret
        self.settings = settings or DeliverySettings()
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.clock = clock
        # In the alert log's slot (one MULTI/EXEC acknowledges an event and records its delivery).
        self.k_retry = alerts.keys.webhook("retry")  # HASH entry id → {attempts, next_at, error}
        self.k_dead = alerts.keys.webhook("dead")  # LIST of dead-lettered deliveries (JSON), newest first
        self.k_log = alerts.keys.webhook("log")  # LIST of recent deliveries (JSON), newest first
        self._group_ready = False
        deny = self.settings.deny_private
        self.deny_private = tempo_settings.deny_private_networks() if deny is None else deny
        self._lock = threading.Lock()
        self._queues: dict[str, deque[tuple[str, dict[bytes, bytes] | None, Future[int]]]] = {}
        self._in_flight: set[str] = set()  # entry ids handed to a receiver's queue and not yet attempted
        # entry id → when its last attempt ended (monotonic): a pass that read the pending list before
        # then saw a stale picture of it (the entry may be acknowledged since) and must not hand it over.
        self._ended: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max(1, self.settings.concurrency), thread_name_prefix="tempo-webhook")

    @redis_errors
    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the start of the stream: events committed before any deliverer ran are delivered too.
            self.client.xgroup_create(self.alerts.k_events, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # ---- one pass ----------------------------------------------------------------------------
    @redis_errors
    def run_once(self, block_ms: int | None = None, *, wait: bool = True) -> int:
        """Take over events of dead deliverers, retry what is due, then read new events (waiting up to
        `block_ms` for some), and hand each to its receiver's queue. With `wait`, returns the number of
        POSTs made once they are done; without, the number of events handed over (the loop of `run`)."""
        self._ensure_group()
        self.alerts.sweep()  # events a committer left in a stream's outbox (killed before its relay)
        key = self.alerts.k_events
        self.client.xautoclaim(
            key, GROUP, self.consumer, min_idle_time=int(self.settings.claim_idle * 1000), start_id="0-0", count=100
        )
        handed: list[Future[int]] = []
        read_at = time.monotonic()
        mine = self.client.xreadgroup(GROUP, self.consumer, {key: "0"}, count=100)
        new = self.client.xreadgroup(GROUP, self.consumer, {key: ">"}, count=100, block=block_ms)
        for got in (mine, new):
            for _, entries in got or []:
                for entry_id, raw in entries:
                    future = self._hand_over(entry_id.decode(), raw, read_at)
                    if future is not None:
                        handed.append(future)
        if not wait:
            return len(handed)
        return sum(f.result() for f in handed)

    def _hand_over(self, entry_id: str, raw: dict[bytes, bytes] | None, read_at: float) -> Future[int] | None:
        """Queue an entry behind the earlier events of its receiver (None: it is queued already, or its
        attempt ended after it was read, so what was read of it may be stale)."""
        receiver = _receiver((raw or {}).get(b"webhook", b"").decode(errors="replace"))
        future: Future[int] = Future()
        with self._lock:
            if entry_id in self._in_flight or self._ended.get(entry_id, -1.0) >= read_at:
                return None
            self._in_flight.add(entry_id)
            queue = self._queues.get(receiver)
            start = queue is None
            if queue is None:
                queue = self._queues[receiver] = deque()
            queue.append((entry_id, raw, future))
        if start:
            self._pool.submit(self._drain, receiver)
        return future

    def _drain(self, receiver: str) -> None:
        """Deliver a receiver's queued events in order until its queue is empty."""
        while True:
            with self._lock:
                queue = self._queues[receiver]
                if not queue:
                    del self._queues[receiver]
                    return
                entry_id, raw, future = queue.popleft()
            try:
                future.set_result(self._attempt(entry_id, raw))
            except Exception as exc:  # Redis trouble: the entry stays pending and is read again
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._in_flight.discard(entry_id)
                    now = time.monotonic()
                    self._ended[entry_id] = now
                    if len(self._ended) > 10_000:  # forget attempts older than any pass still running
                        self._ended = {k: t for k, t in self._ended.items() if now - t < 300}

    def close(self) -> None:
        """Wait for the POSTs under way (each ends within its deadline) and stop the threads."""
        self._pool.shutdown(wait=True)

    def _attempt(self, entry_id: str, raw: dict[bytes, bytes] | None) -> int:
        key = self.alerts.k_events
        if not raw:  # trimmed from the stream meanwhile: nothing left to deliver
            self.client.xack(key, GROUP, entry_id)
            return 0
        event = parse_alert(raw)
        url = event.get("webhook")
        if not url:
            self.client.xack(key, GROUP, entry_id)
            return 0
        state = json.loads(self.client.hget(self.k_retry, entry_id) or b'{"attempts": 0, "next_at": 0}')
        now = self.clock()
        if state["next_at"] > now:
            return 0
        idem = delivery_key(event)
        error = self._post(url, event, idem)
        shown = redact_url(url)  # what is recorded and logged; the rule keeps the real URL
        record = {"entry": entry_id, "key": idem, "url": shown, "event": event["event"], "at": round(now, 3)}
        pipe = self.client.pipeline(transaction=True)
        if error is None:
            pipe.xack(key, GROUP, entry_id)
            pipe.hdel(self.k_retry, entry_id)
            pipe.lpush(self.k_log, json.dumps({**record, "attempts": state["attempts"] + 1}))
            pipe.ltrim(self.k_log, 0, LOG_LENGTH - 1)
        else:
            attempts = state["attempts"] + 1
            if attempts >= self.settings.max_attempts:
                log.warning("webhook %s for %s dead-lettered after %d attempts: %s", shown, idem, attempts, error)
                pipe.lpush(self.k_dead, json.dumps({**record, "attempts": attempts, "error": error}))
                pipe.xack(key, GROUP, entry_id)
                pipe.hdel(self.k_retry, entry_id)
            else:
                delay = min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempts - 1))
                retry = {"attempts": attempts, "next_at": now + delay, "error": error, "key": idem, "url": shown}
                pipe.hset(self.k_retry, entry_id, json.dumps(retry))
        pipe.execute()
        return 1

    def _post(self, url: str, event: dict[str, Any], idem: str) -> str | None:
        """POST the event; None on a 2xx answer, else what went wrong (one line, no secrets)."""
        body = event_body(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tempo-alerts",
            "Idempotency-Key": idem,
            "X-Tempo-Event": str(event["event"]),
            SIGNATURE_HEADER: sign(self.secret, body),
        }
        error = webhook_http.post(
            url, body, headers, deadline=self.settings.timeout, deny_private=self.deny_private
        )
        return None if error is None else redact_secrets(error)

    # ---- loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, poll: float = 0.5) -> None:
        """Deliver until `stop` is set; Redis outages are logged and retried."""
        try:
            while not stop.is_set():
                try:
                    self.run_once(block_ms=int(poll * 1000), wait=False)
                except MemoryUnavailableError as exc:
                    log.warning("webhook delivery: %s", exc)
                    stop.wait(poll)
        finally:
            self.close()

    # ---- view -------------------------------------------------------------------------------------
    @redis_errors
    def deliveries(self, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """{"pending": retries waiting, "dead": dead letters, "delivered": recent successes}, newest first."""
        pending = [{"entry": k.decode(), **json.loads(v)} for k, v in self.client.hgetall(self.k_retry).items()]
        pending.sort(key=lambda p: p["next_at"])
        view = {
            "pending": pending[:limit],
            "dead": [json.loads(x) for x in self.client.lrange(self.k_dead, 0, limit - 1)],
            "delivered": [json.loads(x) for x in self.client.lrange(self.k_log, 0, limit - 1)],
        }
        for rows in view.values():  # records written before URLs were recorded redacted
            for row in rows:
                if isinstance(row.get("url"), str):
                    row["url"] = redact_url(row["url"])
        return view


class DeliveryThread:
    """A deliverer running in a daemon thread; `stop()` makes one last pass and joins it."""

    def __init__(self, deliverer: WebhookDeliverer, poll: float = 0.5) -> None:
        self.deliverer = deliverer
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=deliverer.run, args=(self.stop_event,), kwargs={"poll": poll}, name="tempo-webhooks", daemon=True
        )
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout=timeout)


def start_delivery_thread(alerts: AlertStore, *, settings: DeliverySettings | None = None) -> DeliveryThread | None:
    """Start delivering in this process (ingest, servers); None, with a warning when some rule has a
    webhook, if $TEMPO_WEBHOOK_SECRET is not set."""
    try:
        secret = webhook_secret()
    except WebhookSecretError as exc:
        if any(r.webhook for r in alerts.rules()):
            log.warning("webhooks are not delivered: %s", exc)
        return None
    return DeliveryThread(WebhookDeliverer(alerts, secret, settings=settings))
