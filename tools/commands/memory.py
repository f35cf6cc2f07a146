"""`tempo memory status|stop`: the embedded redis-server of the data directory."""

from __future__ import annotations

import argparse
import json
import os

from tempo.errors import redact_url
from tempo.memory import EmbeddedRedis, tempo_home
from tempo.memory.embedded import ENV_URL


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "memory",
        help="status or stop of the embedded Redis server",
        description=(
            "Manage the private redis-server Tempo starts under TEMPO_HOME when TEMPO_REDIS_URL is unset."
        ),
    )
    parser.add_argument("action", choices=["status", "start", "stop"])
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    server = EmbeddedRedis(tempo_home())
    if args.action == "start":
        server.ensure_running()
    elif args.action == "stop":
        stopped = server.stop()
        if not args.json:
            print("stopped" if stopped else "not running")
            return 0
    running = server.is_running()
    status = {
        "home": str(server.home),
        "running": running,
        "url": server.url,
        "pid": server.pid() if running else None,
        # The URL may carry a password; `tempo memory status` is pasted into bug reports.
        "external_url": redact_url(os.environ.get(ENV_URL) or "") or None,
    }
    if args.json:
        print(json.dumps(status))
    else:
        state = f"running (pid {status['pid']}) at {server.url}" if running else "not running"
        print(f"embedded redis-server: {state}; data in {server.dir}")
        if status["external_url"]:
            print(f"note: {ENV_URL} is set, so Tempo uses {status['external_url']} instead")
    return 0
