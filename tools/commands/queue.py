"""`tempo queue status [--json]` and `tempo queue dead STREAM [--json]`: the work queue at a glance."""

from __future__ import annotations

import argparse
import json

from tempo import inputs
from tempo.errors import NotFoundError
from tempo.inputs import arg_type
from tempo.memory import RedisMemoryStore
from tempo.memory.jobqueue import JobQueue
from tempo.tools.commands.options import add_memory_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "queue",
        help="the scale-out work queue: backlog, workers, dead letters",
        description="Inspect the Redis work queue that `tempo ingest --queue` fills and `tempo worker` drains.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="per stream: queued, pending, lag, dead letters; per worker: throughput",
        description=(
            "Per stream: jobs queued (not yet acknowledged), pending (delivered, not acknowledged), lag "
            "(not yet delivered), produced and contiguously committed indices, jobs dropped by live "
            "backpressure, dead letters. Per worker: segments, busy seconds, segments per busy second, "
            "seconds since last seen. The same figures are Prometheus metrics (memory.queue_metrics.QueueCollector)."
        ),
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    add_memory_options(status)
    status.set_defaults(func=run_status)
    dead = actions.add_parser("dead", help="a stream's dead-letter jobs and their errors",
                              description="List the stream's dead-lettered jobs (newest 100) with their errors.")
    dead.add_argument("stream", metavar="STREAM", type=arg_type(inputs.StreamName, "stream name"))
    dead.add_argument("--json", action="store_true", help="print them as JSON")
    add_memory_options(dead)
    dead.set_defaults(func=run_dead)


def _open(args: argparse.Namespace) -> tuple[RedisMemoryStore, JobQueue]:
    store = RedisMemoryStore.connect(args.redis_url)
    return store, JobQueue.for_store(store)


def run_status(args: argparse.Namespace) -> int:
    store, queue = _open(args)
    status = queue.status(store)
    if args.json:
        print(json.dumps(status))
        return 0
    if not status["streams"]:
        print("no queued streams (start a producer with `tempo ingest SOURCE --stream NAME --queue`)")
    else:
        cols = ("queued", "pending", "lag", "produced", "committed", "dropped", "dead_letters")
        rows = [(name, *(str(row[c]) for c in cols)) for name, row in status["streams"].items()]
        _table(("STREAM", *(c.upper() for c in cols)), rows)
    if status["workers"]:
        print()
        rows = [(name, str(w["segments"]), f"{w['segments_per_second']:.2f}", str(w["seen_seconds_ago"]))
                for name, w in status["workers"].items()]
        _table(("WORKER", "SEGMENTS", "SEG/S", "SEEN (s ago)"), rows)
    return 0


def run_dead(args: argparse.Namespace) -> int:
    store, queue = _open(args)
    if args.stream not in queue.streams() and args.stream not in store.stream_names():
        raise NotFoundError(f"no stream {args.stream!r} in the work queue or in memory (see `tempo queue status`)")
    letters = queue.dead_letters(args.stream)
    if args.json:
        print(json.dumps({"stream": args.stream, "dead_letters": letters}))
        return 0
    if not letters:
        print(f"no dead letters for stream {args.stream!r}")
    for d in letters:
        print(f"segment {d['job'].get('index')}: {d['error']} (after {d['attempts']} attempts)")
    return 0


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
