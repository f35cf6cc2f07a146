"""Webhook delivery of alert events to a real HTTP receiver on 127.0.0.1: retries, signature, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tempo.agent.monitoring.webhooks import DeliverySettings, WebhookDeliverer
from tempo.memory import StreamSettings, connect
from tempo.memory.alerts import AlertStore, Rule
from tempo.streaming.segment import SourceInfo

SECRET = b"test-shared-secret"
SOURCE = SourceInfo(uri="tcp://127.0.0.1:9", kind="network", live=True)
SETTINGS = StreamSettings(model_id="tiny", embedder_id="e", embedding_dim=4, token_dim=8, stored_tokens=1)
FAST = DeliverySettings(max_attempts=100, backoff=0.02, max_backoff=0.1, timeout=5.0, claim_idle=0.3)


class Receiver:
    """A webhook endpoint: answers 503 while `down`, 200 otherwise; keeps every request it got."""

    def __init__(self) -> None:
        self.down = False
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if receiver.down else 200
                receiver.requests.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for status, h, b in self.requests if status == 200]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture()
def redis_url(any_redis_url: str) -> str:
    """Delivery runs on one server and on a 3-master cluster (the event stream and the deliverer's
    bookkeeping share the alert log's slot there)."""
    return any_redis_url


@pytest.fixture()
def alerts(redis_url: str) -> AlertStore:
    return AlertStore(connect(redis_url))


def _until(condition: Callable[[], bool], deliverers: list[WebhookDeliverer], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        for d in deliverers:
            d.run_once(block_ms=20)


def test_a_receiver_down_then_up_gets_every_event_once_signed_with_the_idempotency_key(
    alerts: AlertStore, receiver: Receiver, commit_alert_scores: Callable[..., None]
) -> None:
    hooked = alerts.add_rule(
        Rule(id="", stream="cam", text="a", enter=0.8, min_segments=1, cooldown=0, webhook=receiver.url)
    )
    alerts.add_rule(Rule(id="", stream="cam", text="b", enter=0.8, min_segments=1, cooldown=0))  # no webhook
    receiver.down = True
    commit_alert_scores("cam", [[0.9, 0.9], [0.1, 0.9], [0.9, 0.1], [0.1, 0.1]])
    expected = {f"cam:{hooked.id}:0", f"cam:{hooked.id}:0#closed", f"cam:{hooked.id}:2", f"cam:{hooked.id}:2#closed"}

    first = WebhookDeliverer(alerts, SECRET, settings=FAST, consumer="first")
    _until(lambda: len(receiver.requests) >= 8, [first])  # every event tried at least twice while down
    view = first.deliveries()
    assert {p["key"] for p in view["pending"]} == expected and view["delivered"] == []

    # The first deliverer goes silent; the receiver comes back; another deliverer takes over its events.
    receiver.down = False
    second = WebhookDeliverer(alerts, SECRET, settings=FAST, consumer="second")
    _until(lambda: len(receiver.accepted()) >= len(expected), [second])
    for _ in range(5):
        second.run_once(block_ms=20)
        first.run_once(block_ms=20)  # back again: nothing left for it

    accepted = receiver.accepted()
    keys = [h["Idempotency-Key"] for h, _ in accepted]
    assert sorted(keys) == sorted(expected)  # every event, none twice
    for headers, body in accepted:
        digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Tempo-Signature"], f"sha256={digest}")
        event = json.loads(body)
        assert headers["X-Tempo-Event"] == event["event"] and event["rule"] == hooked.id
        assert headers["Idempotency-Key"] == (event["id"] if event["event"] == "opened" else f"{event['id']}#closed")
    view = second.deliveries()
    assert view["pending"] == [] and view["dead"] == []
    assert sorted(d["key"] for d in view["delivered"]) == sorted(expected)
    assert alerts.client.xpending(alerts.k_events, "webhooks")["pending"] == 0


def test_a_receiver_that_always_fails_ends_in_the_dead_letter_list(
    alerts: AlertStore, commit_alert_scores: Callable[..., None]
) -> None:
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rule = alerts.add_rule(
        Rule(
            id="",
            stream="cam",
            text="a",
            enter=0.8,
            min_segments=1,
            cooldown=0,
            webhook=f"http://127.0.0.1:{port}/hook",
        )
    )
    commit_alert_scores("cam", [[0.9]])
    deliverer = WebhookDeliverer(
        alerts, SECRET, settings=DeliverySettings(max_attempts=3, backoff=0.01, max_backoff=0.02, timeout=2.0)
    )
    _until(lambda: bool(deliverer.deliveries()["dead"]), [deliverer])
    (dead,) = deliverer.deliveries()["dead"]
    assert (dead["key"], dead["attempts"]) == (f"cam:{rule.id}:0", 3) and "Connection refused" in dead["error"]
    assert deliverer.deliveries()["pending"] == []
    assert alerts.client.xpending(alerts.k_events, "webhooks")["pending"] == 0  # acknowledged: not retried forever
    assert deliverer.run_once(block_ms=20) == 0
