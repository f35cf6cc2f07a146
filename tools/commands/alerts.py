"""`tempo alerts [STREAM] [--since T] [--follow] [--json]`, `tempo alerts ack ID`,
`tempo alerts deliveries`, `tempo alerts deliver`: the alerts rules raised (README "Monitoring")."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from datetime import datetime
from typing import Any

from tempo.engine.timeexpr import format_clock as clock
from tempo.memory import RedisMemoryStore
from tempo.memory.alerts import AlertStore, parse_since
from tempo.memory.errors import InvalidTimeError
from tempo.tools.commands.options import add_memory_options
from tempo.tools.errors import AlertsUsageError

ACTIONS = ("ack", "deliveries", "deliver")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="list, follow, acknowledge and deliver the alerts rules raised",
        description=(
            "`tempo alerts [STREAM]` lists alerts (one per episode of a rule; see `tempo rules`); "
            "--follow prints events (opened, verified, closed) as they happen. "
            "`tempo alerts ack ID` acknowledges one. `tempo alerts deliveries` shows webhook retries, "
            "dead letters and recent deliveries; `tempo alerts deliver` runs a webhook deliverer "
            "(signed with $TEMPO_WEBHOOK_SECRET) until Ctrl-C."
        ),
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="STREAM | ack ID | deliveries | deliver",
        help="a stream name to list its alerts, or one of the actions",
    )
    parser.add_argument(
        "--since",
        default=None,
        type=_since,
        help="only alerts opened since then: Unix seconds, ISO 8601 time, or a duration back (30m, 12h, 2d)",
    )
    parser.add_argument("--follow", action="store_true", help="after the list, print new events until Ctrl-C")
    parser.add_argument("--json", action="store_true", help="JSON output (one object per line with --follow)")
    add_memory_options(parser)
    parser.set_defaults(func=run)


def _since(value: str) -> float:
    """--since as Unix seconds (parsed when the command line is, so a bad one is a usage error)."""
    try:
        return parse_since(value)
    except InvalidTimeError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("since ")) from None


_since.__name__ = "time"


def _clock(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def describe(alert: dict[str, Any]) -> str:
    """One line: id, state, when, where in the stream, peak, verification."""
    state = "closed" if alert.get("closed_at") is not None else "open"
    verified = {True: "verified yes", False: "verified no"}.get(alert.get("verified"), "")
    if alert.get("verify") == "pending":
        verified = "verifying"
    elif alert.get("verify") == "done" and alert.get("verified") is None:
        verified = "unverified"
    reason = f" — {alert['explanation']}" if alert.get("explanation") else ""
    acked = " acked" if alert.get("acked") is not None else ""
    return (
        f"{alert['id']}  {state}{acked}  {_clock(alert.get('opened_at'))}  {alert['stream']} "
        f"{clock(alert['start'])}–{clock(alert['end'])}  {alert['segments']} seg  peak {alert['peak']:.3f}  "
        f"{alert['rule']} {alert.get('text', '')!r}  {verified}{reason}".rstrip()
    )


def run(args: argparse.Namespace) -> int:
    alerts = AlertStore.of(RedisMemoryStore.connect(args.redis_url))
    words = list(args.words)
    if words and words[0] == "ack":
        if len(words) != 2:
            raise AlertsUsageError("usage: tempo alerts ack ID")
        alert = alerts.ack(words[1])
        print(json.dumps(alert) if args.json else f"acknowledged {describe(alert)}")
        return 0
    if words and words[0] == "deliveries":
        return _deliveries(alerts, args)
    if words and words[0] == "deliver":
        return _deliver(alerts)
    if len(words) > 1:
        raise AlertsUsageError(f"expected at most one stream name, got {' '.join(words)!r}")
    stream = words[0] if words else None
    if stream is not None:
        RedisMemoryStore.check_name(stream)
    since = args.since
    listed = alerts.alerts(stream, since=since)
    if args.json and not args.follow:
        print(json.dumps({"alerts": listed}))
    else:
        for alert in listed:
            print(json.dumps(alert) if args.json else describe(alert), flush=True)
        if not listed and not args.follow and not args.json:
            print("no alerts" + (f" on stream {stream!r}" if stream else "") + (" in that time" if since else ""))
    if args.follow:
        for _, event in alerts.follow():
            if stream is not None and event["stream"] != stream:
                continue
            print(json.dumps(event) if args.json else f"{event['event']:<8}  {describe(event)}", flush=True)
    return 0


def _deliveries(alerts: AlertStore, args: argparse.Namespace) -> int:
    from tempo.agent.monitoring.webhooks import WebhookDeliverer

    view = WebhookDeliverer(alerts, b"").deliveries()
    if args.json:
        print(json.dumps(view))
        return 0
    for title, rows in (("pending", view["pending"]), ("dead letters", view["dead"]), ("delivered", view["delivered"])):
        print(f"{title}: {len(rows)}")
        for r in rows:
            extra = f"  next try {_clock(r['next_at'])}" if "next_at" in r else f"  at {_clock(r.get('at'))}"
            error = f"  ({r['error']})" if r.get("error") else ""
            print(f"  {r['key']}  {r['url']}  attempts {r['attempts']}{extra}{error}")
    return 0


def _deliver(alerts: AlertStore) -> int:
    from tempo.agent.monitoring.webhooks import WebhookDeliverer, webhook_secret

    deliverer = WebhookDeliverer(alerts, webhook_secret())
    print(f"delivering webhooks as {deliverer.consumer}; Ctrl-C to stop", file=sys.stderr, flush=True)
    deliverer.run(threading.Event())
    return 0
