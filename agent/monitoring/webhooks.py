"""Webhook delivery of alert events: a consumer group on the alert event stream.

Every event (opened, verified, closed) of a rule with `--webhook URL` is POSTed there as JSON:

    Content-Type: application/json
    Idempotency-Key: <alert id> for the opening, <alert id>#verified / <alert id>#closed for updates
    X-Tempo-Event: opened | verified | closed
    X-Tempo-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, key $TEMPO_WEBHOOK_SECRET>

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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from tempo.agent.errors import WebhookSecretError
from tempo.memory.alerts import AlertStore, delivery_key, parse_alert
from tempo.memory.errors import MemoryUnavailableError, redis_errors
from tempo.settings import ENV_WEBHOOK_SECRET, environment

log = logging.getLogger(__name__)

SECRET_ENV = ENV_WEBHOOK_SECRET
SIGNATURE_HEADER = "X-Tempo-Signature"
GROUP = "webhooks"
LOG_LENGTH = 1000  # recent successful deliveries kept for `tempo alerts deliveries`


def webhook_secret() -> bytes:
    """$TEMPO_WEBHOOK_SECRET as bytes, or WebhookSecretError."""
    secret = environment().webhook_secret
    if not secret:
        raise WebhookSecretError(
            f"set {SECRET_ENV} to the secret shared with the webhook receivers; deliveries are signed with it"
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
    timeout: float = 10.0  # seconds per POST
    claim_idle: float = 60.0  # seconds an event may sit with a silent deliverer before another takes it


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
    def run_once(self, block_ms: int | None = None) -> int:
        """Take over events of dead deliverers, retry what is due, then read new events (waiting up to
        `block_ms` for some). Returns the number of POSTs made."""
        self._ensure_group()
        self.alerts.sweep()  # events a committer left in a stream's outbox (killed before its relay)
        key = self.alerts.k_events
        self.client.xautoclaim(
            key, GROUP, self.consumer, min_idle_time=int(self.settings.claim_idle * 1000), start_id="0-0", count=100
        )
        posts = 0
        mine = self.client.xreadgroup(GROUP, self.consumer, {key: "0"}, count=100)
        for _, entries in mine or []:
            for entry_id, raw in entries:
                posts += self._attempt(entry_id.decode(), raw)
        new = self.client.xreadgroup(GROUP, self.consumer, {key: ">"}, count=100, block=block_ms)
        for _, entries in new or []:
            for entry_id, raw in entries:
                posts += self._attempt(entry_id.decode(), raw)
        return posts

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
        record = {"entry": entry_id, "key": idem, "url": url, "event": event["event"], "at": round(now, 3)}
        pipe = self.client.pipeline(transaction=True)
        if error is None:
            pipe.xack(key, GROUP, entry_id)
            pipe.hdel(self.k_retry, entry_id)
            pipe.lpush(self.k_log, json.dumps({**record, "attempts": state["attempts"] + 1}))
            pipe.ltrim(self.k_log, 0, LOG_LENGTH - 1)
        else:
            attempts = state["attempts"] + 1
            if attempts >= self.settings.max_attempts:
                log.warning("webhook %s for %s dead-lettered after %d attempts: %s", url, idem, attempts, error)
                pipe.lpush(self.k_dead, json.dumps({**record, "attempts": attempts, "error": error}))
                pipe.xack(key, GROUP, entry_id)
                pipe.hdel(self.k_retry, entry_id)
            else:
                delay = min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempts - 1))
                retry = {"attempts": attempts, "next_at": now + delay, "error": error, "key": idem, "url": url}
                pipe.hset(self.k_retry, entry_id, json.dumps(retry))
        pipe.execute()
        return 1

    def _post(self, url: str, event: dict[str, Any], idem: str) -> str | None:
        """POST the event; None on a 2xx answer, else what went wrong (one line)."""
        body = event_body(event)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "tempo-alerts",
                "Idempotency-Key": idem,
                "X-Tempo-Event": str(event["event"]),
                SIGNATURE_HEADER: sign(self.secret, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        return None if 200 <= status < 300 else f"HTTP {status}"

    # ---- loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, poll: float = 0.5) -> None:
        """Deliver until `stop` is set; Redis outages are logged and retried."""
        while not stop.is_set():
            try:
                self.run_once(block_ms=int(poll * 1000))
            except MemoryUnavailableError as exc:
                log.warning("webhook delivery: %s", exc)
                stop.wait(poll)

    # ---- view -------------------------------------------------------------------------------------
    @redis_errors
    def deliveries(self, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """{"pending": retries waiting, "dead": dead letters, "delivered": recent successes}, newest first."""
        pending = [{"entry": k.decode(), **json.loads(v)} for k, v in self.client.hgetall(self.k_retry).items()]
        pending.sort(key=lambda p: p["next_at"])
        return {
            "pending": pending[:limit],
            "dead": [json.loads(x) for x in self.client.lrange(self.k_dead, 0, limit - 1)],
            "delivered": [json.loads(x) for x in self.client.lrange(self.k_log, 0, limit - 1)],
        }


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
