"""`tempo memory status|start|stop|gc`: the embedded redis-server of the data directory, and retention on demand."""

from __future__ import annotations

import argparse
import json

from tempo.errors import redact_url
from tempo.memory import EmbeddedRedis, tempo_home
from tempo.memory.embedded import ENV_URL
from tempo.settings import environment
from tempo.tools.commands.options import add_memory_options, add_stream_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "memory",
        help="the embedded Redis server (status, start, stop) and retention on demand (gc)",
        description=(
            "Manage the private redis-server Tempo starts under TEMPO_HOME when TEMPO_REDIS_URL is unset; "
            "`gc` applies every stream's retention policy now (the --max-age, --max-bytes, "
            "--compact-after and --cold-after it was ingested with), which ingest and the servers also do as they run."
        ),
    )
    parser.add_argument("action", choices=["status", "start", "stop", "gc"])
    add_stream_option(parser, "gc: only this stream")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_memory_options(parser)
    parser.set_defaults(func=run)


def _gc(args: argparse.Namespace) -> int:
    from tempo.memory import RedisMemoryStore, collect_garbage

    store = RedisMemoryStore.connect(args.redis_url)
    if args.stream is not None:
        store.stream_info(args.stream)  # unknown stream: one sentence listing the known ones
    streams = None if args.stream is None else [args.stream]
    removed = collect_garbage(store, streams, max_batches=None)
    after = {name: store.stream_info(name) for name in removed}
    if args.json:
        print(json.dumps({"streams": [{"name": n, "removed": r, "segments": after[n].segments,
                                        "bytes": after[n].bytes.total, "cold_bytes": after[n].bytes.cold}
                                       for n, r in removed.items()]}))
    elif not removed:
        print("no stream has a retention policy (tempo ingest --max-age/--max-bytes/--compact-after/--cold-after "
              "sets one)")
    else:
        for name, count in removed.items():
            b = after[name].bytes
            cold = f", {b.cold} in the cold tier" if b.cold else ""
            print(f"{name}: removed {count} segments; {after[name].segments} left ({b.total} bytes in Redis{cold})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "gc":
        return _gc(args)
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
        "external_url": redact_url(environment().redis_url or "") or None,
    }
    if args.json:
        print(json.dumps(status))
    else:
        state = f"running (pid {status['pid']}) at {server.url}" if running else "not running"
        print(f"embedded redis-server: {state}; data in {server.dir}")
        if status["external_url"]:
            print(f"note: {ENV_URL} is set, so Tempo uses {status['external_url']} instead")
    return 0
