"""`tempo ask VIDEO QUESTION`: answer about a whole video in the reference mode (no memory).

Every segment gets the query-aware SVLM pass, ATA spends the budget, the global LLM answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from tempo.models.config import DEFAULT_MODEL_ID

if TYPE_CHECKING:
    from tempo.models.pipeline import AskResult

BLOCKS = "▁▂▃▄▅▆▇█"
PER_ROW = 30


def _spark(values: list[float], top: float) -> str:
    top = top if top > 0 else 1.0
    return "".join(BLOCKS[min(len(BLOCKS) - 1, max(0, round(v / top * (len(BLOCKS) - 1))))] for v in values)


def _clock(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def print_report(result: AskResult, num_memory_tokens: int, out: TextIO | None = None) -> None:
    """Compact timeline (relevance and kept tokens per segment), tokens/frame and per-stage times."""
    out = out or sys.stdout
    segs = result.segments
    print(file=out)
    print(
        f"timeline: {len(segs)} segments; rows of {PER_ROW}; "
        f"relevance 0→1 and tokens 0→{num_memory_tokens} as ▁→█",
        file=out,
    )
    for lo in range(0, len(segs), PER_ROW):
        row = segs[lo : lo + PER_ROW]
        print(f"  {_clock(row[0].start):>8}  relevance {_spark([s.relevance for s in row], 1.0)}", file=out)
        print(
            f"  {'':>8}  tokens    {_spark([float(s.tokens) for s in row], float(num_memory_tokens))}",
            file=out,
        )
    total = sum(s.tokens for s in segs)
    print(
        f"tokens: {total} of budget {result.budget}; "
        f"{result.avg_tokens_per_frame:.2f} tokens/frame on average",
        file=out,
    )
    stages = " · ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in result.timings.items())
    print(f"time: {stages}", file=out)


def _ask(args: argparse.Namespace) -> int:
    from tempo.models import TempoInferenceConfig, TempoModel, answer_video, resolve_model_name
    from tempo.models.checkpoint import resolve_model_dir
    from tempo.streaming import SamplingConfig, iter_segments

    t0 = time.perf_counter()
    config = TempoInferenceConfig(fps=args.fps, budget=args.budget, context_limit=args.context_limit)
    if args.max_new_tokens is not None:
        config = config.replace(max_new_tokens=args.max_new_tokens)
    # Cheap checks first (model directory, video opens), then the expensive model load.
    model_dir = resolve_model_dir(resolve_model_name(args.model))
    sampling = SamplingConfig(fps=args.fps, window=config.window, max_edge=config.max_edge)
    show_progress = not args.json and sys.stderr.isatty()
    segments = iter_segments(args.video, config=sampling, progress=show_progress)
    model = TempoModel.from_pretrained(model_dir, device=args.device, config=config)
    load_s = time.perf_counter() - t0

    def stream(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    result = answer_video(
        model, segments, args.question, on_text=None if args.json else stream, progress=show_progress
    )
    result.timings = {"load_s": load_s, **result.timings}
    result.timings["total_s"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print()
        print_report(result, model.num_memory_tokens)
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse `type` accepting only positive numbers (a usage error, not a traceback)."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="answer a question about a video file or stream (reference mode: no memory)",
        description=(
            "Answer QUESTION about VIDEO the way the Tempo reference does: every segment is compressed "
            "for the question, Adaptive Token Allocation spends the visual budget, the global LLM answers."
        ),
    )
    parser.add_argument("video", metavar="VIDEO", help="video file, URL or device")
    parser.add_argument("question", metavar="QUESTION")
    parser.add_argument(
        "--model",
        default=None,
        help=f"checkpoint directory or hub id on disk (default: $TEMPO_MODEL, else {DEFAULT_MODEL_ID})",
    )
    parser.add_argument("--budget", type=_positive(int), default=8192, help="visual token budget B (default 8192)")
    parser.add_argument("--fps", type=_positive(float), default=2.0, help="frames sampled per second (default 2)")
    parser.add_argument(
        "--context-limit", type=_positive(int), default=16384, help="LLM context in tokens (default 16384)"
    )
    parser.add_argument(
        "--max-new-tokens", type=_positive(int), default=None, help="longest answer in tokens (default 512)"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=_ask)
