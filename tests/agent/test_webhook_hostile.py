"""Hostile webhook URLs and receivers (issue 26), on a real Redis and real HTTP receivers on 127.0.0.1.

SSRF refusals are checked without any traffic off the machine: literal addresses, names refused by
their spelling, and `localhost` (which resolves locally). Delivery behaviour uses loopback receivers.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tempo.agent.errors import WebhookSecretError
from tempo.agent.monitoring.webhooks import DeliverySettings, DeliveryThread, WebhookDeliverer, webhook_secret
from tempo.memory import connect
from tempo.memory.alerts import AlertStore, Rule
from tempo.memory.errors import InvalidRuleError

SECRET = b"test-shared-secret-0123"
FAST = DeliverySettings(max_attempts=100, backoff=0.02, max_backoff=0.1, timeout=2.0, claim_idle=0.3)


class Receiver:
    """An HTTP endpoint answering `status` (with `location` for a redirect); keeps what it got."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.got_at: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                receiver.requests.append((self.command, dict(self.headers.items())))
                receiver.got_at.append(time.monotonic())
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class Trickler:
    """A receiver that accepts, reads the request, then sends its answer one byte every `every` seconds."""

    def __init__(self, every: float = 1.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow"
        self.every = every
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                if self.stop.wait(self.every):
                    return
                try:
                    conn.send(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture()
def alerts(redis_url: str) -> AlertStore:
    return AlertStore(connect(redis_url))


@pytest.fixture()
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(status: int = 200, location: str | None = None) -> Receiver:
        made.append(Receiver(status, location))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _rule(alerts: AlertStore, webhook: str, text: str = "a", **kw: Any) -> Rule:
    return alerts.add_rule(Rule(id="", stream="cam", text=text, enter=0.8, min_segments=1, cooldown=0,
                                webhook=webhook), **kw)


def _run_until(deliverer: WebhookDeliverer, condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        deliverer.run_once(block_ms=20)


# ----- where a webhook may point ---------------------------------------------------------------------

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./x",
    "http://[fe80::1]/x",
    "http://169.254.10.10/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://0xa9fea9fe/x",  # 169.254.169.254 as the resolver reads it
    "http://2852039166/x",  # the same, as one number
    "http://100.100.100.200/x",
]
PRIVATE = [
    "http://10.0.0.1/x",
    "http://192.168.1.1/x",
    "http://172.16.0.1/x",
    "http://[fd00::1]/x",
    "http://localhost/x",
    "http://[::1]/x",
    "http://127.0.0.2:9/x",
    "http://0/x",
    "http://127.1/x",
    "http://0.0.0.0/x",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_metadata_and_link_local_webhooks_are_always_refused(alerts: AlertStore, url: str) -> None:
    with pytest.raises(InvalidRuleError, match=r"metadata|link-local") as caught:
        _rule(alerts, url, deny_private=False)
    assert "\n" not in str(caught.value)
    assert alerts.rules() == []


@pytest.mark.parametrize("url", PRIVATE)
def test_private_webhooks_are_refused_when_the_operator_denies_private_networks(
    alerts: AlertStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _rule(alerts, url, deny_private=False).webhook == url  # LAN receivers are the common case
    with pytest.raises(InvalidRuleError, match="private networks are denied"):
        _rule(alerts, url, deny_private=True)
    monkeypatch.setenv("TEMPO_DENY_PRIVATE_NETWORKS", "1")  # the one setting of the CLI and workers
    with pytest.raises(InvalidRuleError, match="private networks are denied"):
        _rule(alerts, url)
    assert len(alerts.rules()) == 1


def test_a_mistyped_deny_setting_is_refused_not_ignored(alerts: AlertStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from tempo.errors import InvalidInputError

    monkeypatch.setenv("TEMPO_DENY_PRIVATE_NETWORKS", "ture")
    with pytest.raises(InvalidInputError, match="TEMPO_DENY_PRIVATE_NETWORKS must be 1 or 0"):
        _rule(alerts, "http://10.0.0.1/x")


def test_the_address_is_checked_again_at_delivery_time(
    alerts: AlertStore, receivers: Callable[..., Receiver], commit_alert_scores: Callable[..., None]
) -> None:
    """A rule accepted while private networks were allowed (or whose name changed its answer since) is
    not delivered by a deliverer that denies them: the check is made on the resolved address."""
    receiver = receivers()
    port = receiver.server.server_address[1]
    _rule(alerts, f"http://localhost:{port}/hook", deny_private=False)
    commit_alert_scores("cam", [[0.9]])
    deliverer = WebhookDeliverer(alerts, SECRET, settings=DeliverySettings(
        max_attempts=2, backoff=0.01, max_backoff=0.02, timeout=2.0, deny_private=True))
    _run_until(deliverer, lambda: bool(deliverer.deliveries()["dead"]))
    dead = deliverer.deliveries()["dead"][0]
    assert dead["error"].startswith("refused:") and "private networks are denied" in dead["error"]
    assert receiver.requests == []  # not one byte reached it


@pytest.mark.parametrize("target", ["other", "ftp://127.0.0.1/x"])
def test_redirects_are_not_followed_and_count_as_failures(
    alerts: AlertStore, receivers: Callable[..., Receiver], commit_alert_scores: Callable[..., None], target: str
) -> None:
    other = receivers()
    redirecting = receivers(302, other.url if target == "other" else target)
    _rule(alerts, redirecting.url)
    commit_alert_scores("cam", [[0.9]])
    deliverer = WebhookDeliverer(alerts, SECRET, settings=DeliverySettings(
        max_attempts=2, backoff=0.01, max_backoff=0.02, timeout=2.0))
    _run_until(deliverer, lambda: bool(deliverer.deliveries()["dead"]))
    view = deliverer.deliveries()
    assert view["delivered"] == []  # never recorded as delivered
    assert view["dead"][0]["error"] == "HTTP 302: redirects are not followed"
    assert [m for m, _ in redirecting.requests] == ["POST", "POST"] and other.requests == []


def test_credentials_in_the_url_go_in_an_authorization_header_and_are_never_shown(
    alerts: AlertStore, receivers: Callable[..., Receiver], commit_alert_scores: Callable[..., None]
) -> None:
    receiver = receivers()
    port = receiver.server.server_address[1]
    url = f"http://hook-user:p%40ss%2Fword@127.0.0.1:{port}/hook?token=abc123&x=1#frag-secret"
    rule = _rule(alerts, url)
    assert rule.webhook == url  # stored whole: delivery needs it
    shown = rule.shown()["webhook"]
    for secret in ("p%40ss", "abc123", "frag-secret"):
        assert secret not in shown
    assert shown.startswith("http://hook-user:***@127.0.0.1:")
    commit_alert_scores("cam", [[0.9]])
    deliverer = WebhookDeliverer(alerts, SECRET, settings=FAST)
    _run_until(deliverer, lambda: bool(receiver.requests))
    _, headers = receiver.requests[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"hook-user:p@ss/word").decode()
    assert headers["Host"] == f"127.0.0.1:{port}"
    _run_until(deliverer, lambda: bool(deliverer.deliveries()["delivered"]))
    logged = deliverer.deliveries()["delivered"][0]["url"]
    assert "abc123" not in logged and "p%40ss" not in logged and "frag-secret" not in logged


def test_one_trickling_receiver_delays_only_its_own_events(
    alerts: AlertStore, receivers: Callable[..., Receiver], commit_alert_scores: Callable[..., None]
) -> None:
    """A receiver sending one byte a second is cut off at the POST's total deadline (2 s here), and a
    healthy receiver of another rule gets its alert meanwhile, not after the slow one's turn."""
    slow = Trickler(every=1.0)
    healthy = receivers()
    try:
        _rule(alerts, slow.url, text="a")
        _rule(alerts, healthy.url, text="b")
        commit_alert_scores("cam", [[0.9, 0.9]])  # both rules open an episode on the same segment
        deliverer = WebhookDeliverer(alerts, SECRET, settings=DeliverySettings(
            max_attempts=1, backoff=0.01, timeout=2.0))
        started = time.monotonic()
        thread = DeliveryThread(deliverer, poll=0.05)
        deadline = started + 20
        while not (healthy.requests and deliverer.deliveries()["dead"]):
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
        thread.stop()
        assert healthy.got_at[0] - started < 1.5  # not behind the slow receiver's 2 s
        dead = deliverer.deliveries()["dead"]
        assert len(dead) == 1 and dead[0]["error"] == "no answer within 2 s"
    finally:
        slow.close()


@pytest.mark.parametrize("value, message", [("", "blank"), ("   ", "blank"), ("x", "shorter than 16")])
def test_a_blank_or_short_webhook_secret_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("TEMPO_WEBHOOK_SECRET", value)
    with pytest.raises(WebhookSecretError, match=message):
        webhook_secret()
    monkeypatch.setenv("TEMPO_WEBHOOK_SECRET", "s" * 16)
    assert webhook_secret() == b"s" * 16
