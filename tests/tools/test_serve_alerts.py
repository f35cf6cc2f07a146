"""Rules and alerts over `tempo serve` (issues 11 and 12): rule CRUD, alert list and acknowledge, the
SSE feed of alert events (fed by a real ingest whose rule certainly fires), webhook delivery for the
server's life, on a real Redis and the tiny model. Errors are RFC 9457 problem details."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis

tools_conftest = sys.modules[
    next(n for n, m in sys.modules.items() if n.endswith("conftest") and hasattr(m, "ServeProcess"))
]
ServeProcess = tools_conftest.ServeProcess

# Scores are in [0, 1]: with enter 0 and one segment, the first scored segment opens an episode.
CERTAIN = {"text": "a square moves", "enter": 0.0, "exit": 0.0, "min_segments": 1, "cooldown": 0.0}


def problem_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and body["type"] == "about:blank"
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body


def wait_job(base: str, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (job := httpx2.get(f"{base}/v1/jobs/{job_id}").json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    return job


class Feed:
    """A client of GET /v1/alerts/events in a thread; keeps every (id, event, data) it got."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str | None, str, dict[str, Any]]] = []
        self.open = threading.Event()
        self.client = httpx2.Client(timeout=httpx2.Timeout(60))
        self.url = url
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.open.wait(30)

    def _run(self) -> None:
        with contextlib.suppress(httpx2.HTTPError):  # closed by the test
            self._read()

    def _read(self) -> None:
        with self.client.stream("GET", self.url, headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            self.open.set()
            entry, kind = None, "message"
            for line in response.iter_lines():
                if line.startswith("id: "):
                    entry = line[4:]
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((entry, kind, json.loads(line[6:])))
                    entry, kind = None, "message"

    def wait(self, condition, timeout: float = 180) -> list:
        deadline = time.monotonic() + timeout
        while not (found := [e for e in self.events if condition(e)]):
            assert time.monotonic() < deadline, self.events
            time.sleep(0.2)
        return found

    def close(self) -> None:
        self.client.close()


def blocked_readers(url: str) -> int:
    """Redis clients currently in a blocking XREAD (the feed's readers)."""
    clients = redis.Redis.from_url(url).client_list()
    return sum(1 for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", ""))


# ----- rules ------------------------------------------------------------------------------------------------


def test_rules_are_created_listed_shown_and_deleted(serve_server, serve_memory):
    base = serve_server.base
    made = httpx2.post(f"{base}/v1/rules", json={"stream": "cam", "text": "  a person   climbs the fence "})
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["text"] == "a person climbs the fence" and rule["stream"] == "cam"
    assert (rule["enter"], rule["exit"], rule["min_segments"], rule["cooldown"]) == (0.8, None, 2, 60.0)
    auto = httpx2.post(f"{base}/v1/rules", json={"stream": "other", "text": "smoke", "enter": "auto"}).json()
    assert auto["enter"] == "auto"

    # The same rule book as `tempo rules list` (one implementation).
    from tempo.memory.alerts import AlertStore

    stored = AlertStore(redis.Redis.from_url(serve_memory.url)).get_rule(rule["id"])
    assert stored.to_json() == rule

    assert [r["id"] for r in httpx2.get(f"{base}/v1/rules", params={"stream": "cam"}).json()] == [rule["id"]]
    assert {r["id"] for r in httpx2.get(f"{base}/v1/rules").json()} >= {rule["id"], auto["id"]}
    assert httpx2.get(f"{base}/v1/rules/{rule['id']}").json() == rule
    assert httpx2.delete(f"{base}/v1/rules/{rule['id']}").status_code == 204
    for response in (httpx2.get(f"{base}/v1/rules/{rule['id']}"), httpx2.delete(f"{base}/v1/rules/{rule['id']}")):
        assert response.status_code == 404
        assert f"no rule {rule['id']!r}" in problem_of(response)["detail"]
    assert httpx2.delete(f"{base}/v1/rules/{auto['id']}").status_code == 204
    assert httpx2.get(f"{base}/v1/rules", params={"stream": "cam"}).json() == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"stream": "cam", "text": "x", "enter": 1.5}, "'enter'"),
        ({"stream": "cam", "text": "x", "enter": "sometimes"}, "'enter'"),
        ({"stream": "cam", "text": "x", "enter": 0.5, "exit": 0.7}, "above --enter"),
        ({"stream": "cam", "text": "   "}, "'text'"),
        ({"stream": "cam", "text": "x" * 1001}, "'text'"),
        ({"stream": "cam", "text": "x", "min_segments": 0}, "'min_segments'"),
        ({"stream": "cam", "text": "x", "cooldown": -1}, "'cooldown'"),
        ({"stream": "cam", "text": "x", "webhook": "ftp://example.com/hook"}, "'webhook'"),
        ({"stream": "no/slash", "text": "x"}, "'stream'"),
        ({"stream": "cam", "text": "x", "colour": "red"}, "unknown field 'colour'"),
        ({"text": "x"}, "'stream' is required"),
    ],
)
def test_bad_rules_are_one_sentence_422_and_nothing_is_stored(serve_server, body, detail):
    before = httpx2.get(f"{serve_server.base}/v1/rules").json()
    response = httpx2.post(f"{serve_server.base}/v1/rules", json=body)
    assert response.status_code == 422
    assert detail in problem_of(response)["detail"]
    assert httpx2.get(f"{serve_server.base}/v1/rules").json() == before


def test_bad_rule_filters_are_422(serve_server):
    response = httpx2.get(f"{serve_server.base}/v1/rules", params={"stream": "a b/c"})
    assert response.status_code == 422
    problem_of(response)


# ----- alerts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "yesterday-ish"}, "is not a time"),
        ({"limit": "0"}, "'limit'"),
        ({"limit": "100000"}, "'limit'"),
        ({"stream": "../x"}, "stream"),
        ({"since": "1" * 65}, "'since'"),
    ],
)
def test_bad_alert_queries_are_422(serve_server, params, detail):
    response = httpx2.get(f"{serve_server.base}/v1/alerts", params=params)
    assert response.status_code == 422, response.text
    assert detail in problem_of(response)["detail"]


def test_unknown_alerts_are_404(serve_server):
    for response in (
        httpx2.get(f"{serve_server.base}/v1/alerts/cam:nope"),
        httpx2.post(f"{serve_server.base}/v1/alerts/cam:nope/ack"),
    ):
        assert response.status_code == 404
        assert "no alert 'cam:nope'" in problem_of(response)["detail"]


def test_a_bad_resume_point_for_the_feed_is_422(serve_server):
    response = httpx2.get(f"{serve_server.base}/v1/alerts/events", params={"after": "yesterday"})
    assert response.status_code == 422
    problem_of(response)


def test_an_ingest_with_a_rule_is_followed_live_listed_and_acknowledged(serve_server, serve_memory):
    base = serve_server.base
    feed = Feed(f"{base}/v1/alerts/events?stream=fired")
    other = Feed(f"{base}/v1/alerts/events?stream=elsewhere")
    try:
        rule = httpx2.post(f"{base}/v1/rules", json={"stream": "fired", **CERTAIN}).json()
        job = httpx2.post(f"{base}/v1/streams/fired/ingest", json={"source": "walk.mp4"}).json()
        (entry, kind, opened), *_ = feed.wait(lambda e: e[2]["event"] == "opened")
        assert kind == "alert" and entry
        assert (opened["stream"], opened["rule"], opened["text"]) == ("fired", rule["id"], CERTAIN["text"])
        assert opened["start"] == 0.0 and opened.get("acked") is None
        assert wait_job(base, job["id"])["state"] == "done"
        assert other.events == []  # filtered by stream

        listed = httpx2.get(f"{base}/v1/alerts", params={"stream": "fired"}).json()
        assert [a["id"] for a in listed] == [opened["id"]]
        assert httpx2.get(f"{base}/v1/alerts", params={"stream": "fired", "since": "1h"}).json() == listed
        assert httpx2.get(f"{base}/v1/alerts", params={"stream": "fired", "since": "2999-01-01T00:00"}).json() == []
        assert httpx2.get(f"{base}/v1/alerts/{opened['id']}").json()["id"] == opened["id"]

        acked = httpx2.post(f"{base}/v1/alerts/{opened['id']}/ack")
        assert acked.status_code == 200
        first = acked.json()["acked"]
        assert isinstance(first, float) and abs(first - time.time()) < 60
        again = httpx2.post(f"{base}/v1/alerts/{opened['id']}/ack").json()
        assert again["acked"] == first  # the first acknowledgement is kept
        assert httpx2.get(f"{base}/v1/alerts", params={"stream": "fired"}).json()[0]["acked"] == first

        # A reconnect that names the last event it saw gets what came after it, nothing before.
        replay = Feed(f"{base}/v1/alerts/events?stream=fired&after=0-0")
        try:
            got = replay.wait(lambda e: e[2]["id"] == opened["id"])
            assert got[0][0] == entry
        finally:
            replay.close()
    finally:
        feed.close()
        other.close()


def test_the_feed_stops_reading_redis_when_the_client_goes_away(serve_server, serve_memory):
    deadline = time.monotonic() + 10
    while blocked_readers(serve_memory.url) and time.monotonic() < deadline:  # earlier tests' feeds
        time.sleep(0.2)
    before = blocked_readers(serve_memory.url)
    feeds = [Feed(f"{serve_server.base}/v1/alerts/events") for _ in range(3)]
    deadline = time.monotonic() + 10
    while blocked_readers(serve_memory.url) < before + 3:
        assert time.monotonic() < deadline, "the feeds are not reading the alert stream"
        time.sleep(0.1)
    for feed in feeds:
        feed.close()
    deadline = time.monotonic() + 10
    while blocked_readers(serve_memory.url) > before:
        assert time.monotonic() < deadline, "a feed kept reading after its client went away"
        time.sleep(0.1)


def test_the_feed_does_not_wait_behind_the_model(serve_server):
    """While questions hold the model, the feed opens and answers at once (it never enters the queue)."""
    base = serve_server.base

    def ask() -> None:
        httpx2.post(f"{base}/v1/streams/cam/ask", json={"question": "What moves?"}, timeout=120)

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for t in askers:
        t.start()
    try:
        t0 = time.monotonic()
        with httpx2.stream("GET", f"{base}/v1/alerts/events", timeout=30) as response:
            assert response.status_code == 200
            next(response.iter_lines())  # the opening comment
        assert httpx2.get(f"{base}/v1/alerts", timeout=30).status_code == 200
        assert time.monotonic() - t0 < 10
    finally:
        for t in askers:
            t.join()


# ----- webhooks for the server's life ------------------------------------------------------------------------


def _webhook_receiver() -> Any:
    """The webhook endpoint of the monitoring tests (tests/agent/test_webhooks.py), loaded by path: the
    test folders are not packages."""
    path = Path(__file__).resolve().parents[1] / "agent" / "test_webhooks.py"
    spec = importlib.util.spec_from_file_location("tempo_webhook_receiver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Receiver()


def test_serve_delivers_webhooks_while_it_runs_when_a_secret_is_set(serve_memory, monkeypatch):
    """An alert raised by an ingest that delivers nothing (no secret in its environment) is delivered
    by `tempo serve` started with $TEMPO_WEBHOOK_SECRET, signed; the server then stops cleanly."""
    from tempo.agent.monitoring.ingest import monitored_ingest
    from tempo.memory.alerts import AlertStore, Rule

    monkeypatch.delenv("TEMPO_WEBHOOK_SECRET", raising=False)
    receiver = _webhook_receiver()
    try:
        service = serve_memory.service()
        rule = AlertStore.of(service.store).add_rule(
            Rule(
                id="",
                stream="hooked",
                text="a square moves",
                enter=0.0,
                exit=0.0,
                min_segments=1,
                cooldown=0.0,
                webhook=receiver.url,
            )
        )
        monitored_ingest(service, str(serve_memory.root / "media" / "walk.mp4"), "hooked", progress=False)
        assert receiver.accepted() == []
        secret = "serve-webhook-secret"
        server = ServeProcess(serve_memory, env={"TEMPO_WEBHOOK_SECRET": secret})
        try:
            deadline = time.monotonic() + 60
            while not receiver.accepted():
                assert time.monotonic() < deadline, "tempo serve delivered no webhook"
                time.sleep(0.2)
        finally:
            err = server.stop()
        # uvicorn shuts down (lifespan: the delivery thread's last pass, joined), then re-raises SIGTERM.
        assert server.proc.returncode in (0, -signal.SIGTERM), err
        assert "Traceback" not in err and secret not in err
        headers, body = receiver.accepted()[0]
        event = json.loads(body)
        assert (event["stream"], event["rule"]) == ("hooked", rule.id)
        headers = {k.lower(): v for k, v in headers.items()}
        assert headers["idempotency-key"] == event["id"]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-tempo-signature"] == f"sha256={expected}"
    finally:
        receiver.server.shutdown()
