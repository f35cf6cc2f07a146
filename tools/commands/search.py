"""`tempo search QUERY [--streams A,B]`: the moments of memory that best match a description, across streams.

The query is embedded once (SigLIP) and one FAISS top-K runs over every chosen stream (all by default);
no model is loaded, so it answers in well under a second once the index is open.
"""

from __future__ import annotations

import argparse
import json

from tempo import inputs
from tempo.engine.timeexpr import format_clock
from tempo.inputs import arg_type, check
from tempo.tools.commands.ask import _stream_list
from tempo.tools.commands.options import add_memory_options, add_model_options, check_streams_first


def run(args: argparse.Namespace) -> int:
    query = check(inputs.Query, args.query, "QUERY")
    check_streams_first(args.redis_url, args.streams or [])  # before the model stack is imported
    from tempo.agent.cross import search_streams
    from tempo.service import TempoService

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    hits = search_streams(service, args.streams, query, top_k=args.top_k, start=args.start, end=args.end)
    moments = [
        {"stream": h.stream, "index": int(h.index), "start": round(float(h.start), 3), "end": round(float(h.end), 3),
         "clock": format_clock(h.start), "score": round(float(h.score), 6)}
        for h in hits
    ]  # fmt: skip
    if args.json:
        print(json.dumps({"query": query, "moments": moments}, ensure_ascii=False))
        return 0
    if not moments:
        print("no moments found (the chosen streams hold no segments in that time)")
        return 0
    width = max(len(m["stream"]) for m in moments)
    print(f"{'stream':<{width}}  {'time':>8}  {'segment':>7}  score")
    for m in moments:
        print(f"{m['stream']:<{width}}  {m['clock']:>8}  {m['index']:>7}  {m['score']:.3f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the moments of memory that best match a description, across streams",
        description=(
            "Embed QUERY once and take the best-matching segments over every stream in memory (or those of "
            "--streams) with one FAISS search; prints stream, time, segment and similarity, best first. "
            "No Tempo model is loaded (only the SigLIP embedder)."
        ),
    )
    parser.add_argument("query", metavar="QUERY", help="what to look for, e.g. 'a red truck at the gate'")
    parser.add_argument(
        "--streams", default=None, metavar="A,B,...", type=_stream_list,
        help="search only these streams (comma-separated; default: every stream)",
    )  # fmt: skip
    parser.add_argument(
        "--top-k", type=arg_type(inputs.TopK, "count"), default=5,
        help=f"moments to show, 1 to {inputs.MAX_TOP_K} (default 5)",
    )  # fmt: skip
    parser.add_argument("--start", type=arg_type(inputs.StreamTime, "seconds"), default=None,
                        help="only moments from this stream time (seconds)")  # fmt: skip
    parser.add_argument("--end", type=arg_type(inputs.StreamTime, "seconds"), default=None,
                        help="only moments up to this stream time (seconds)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object: {query, moments}")
    add_model_options(parser)
    add_memory_options(parser)
    parser.set_defaults(func=run)
