"""`tempo streams [--json]`: the streams held in memory, their segment counts, covered time and bytes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tempo.engine.timeexpr import format_clock
from tempo.memory import RedisMemoryStore
from tempo.tools.commands.options import add_memory_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "streams",
        help="list the streams in memory",
        description=(
            "List the streams in memory: segments, covered time (seconds), stretches with no video "
            "(gaps: a camera outage, a timestamp jump, a dropped live segment) and bytes stored."
        ),
    )
    parser.add_argument("--json", action="store_true", help='print {"streams": [...]} as JSON')
    add_memory_options(parser)
    parser.set_defaults(func=run)


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _clock(value: float | None) -> str:
    """Stream time as every output writes it (format_clock: a 119.98 s end is 2:00, as in the console)."""
    return "-" if value is None else format_clock(value)


def run(args: argparse.Namespace) -> int:
    store = RedisMemoryStore.connect(args.redis_url)
    streams: list[dict[str, Any]] = [info.summary(store.gaps(info.name)) for info in store.list_streams()]
    if args.json:
        print(json.dumps({"streams": streams}))
        return 0
    if not streams:
        print("no streams yet (ingest one with `tempo ingest SOURCE --stream NAME`)")
        return 0
    header = ("NAME", "SEGMENTS", "START", "END", "GAPS", "BYTES")
    rows = [
        (s["name"], str(s["segments"]), _clock(s["start"]), _clock(s["end"]),
         f"{len(s['gaps'])} ({format_clock(s['gap_seconds'])})" if s["gaps"] else "-", _human_bytes(s["bytes"]))
        for s in streams
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs]
        print("  ".join(cells))
    return 0
