"""`tempo ask VIDEO QUESTION` (reference mode) and `tempo ask --stream NAME QUESTION` (from memory).

Reference mode: every segment of the video gets the query-aware SVLM pass, ATA spends the budget,
the global LLM answers. From memory: FAISS top-K candidates (+ neighbours) get the query-aware pass,
every other segment of the stream is a minimal anchor from its stored generic tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, TextIO

from tempo import inputs
from tempo.engine.timeexpr import format_clock
from tempo.errors import redact_url
from tempo.inputs import arg_type, check, check_question
from tempo.models.config import TempoInferenceConfig
from tempo.settings import AskSettings
from tempo.tools.commands.open_weights import add_open_weights_options, remote_answerer
from tempo.tools.commands.options import (
    add_fps_option,
    add_max_new_tokens_option,
    add_memory_options,
    add_model_options,
    add_stream_option,
    add_subtitles_option,
    add_thread_option,
    add_top_k_option,
    check_streams_first,
)

if TYPE_CHECKING:
    from tempo.engine.result import TurnResult
    from tempo.service import TempoService

BLOCKS = "▁▂▃▄▅▆▇█"
PER_ROW = 30


def _spark(values: list[float | None], top: float) -> str:
    """One block per value, ▁ (0) to █ (top); "·" where there is no value (an anchor's relevance)."""
    top = top if top > 0 else 1.0
    return "".join(
        "·" if v is None else BLOCKS[min(len(BLOCKS) - 1, max(0, round(v / top * (len(BLOCKS) - 1))))]
        for v in values
    )


def print_report(result: TurnResult, num_memory_tokens: int, out: TextIO | None = None) -> None:
    """Compact timeline (relevance and kept tokens per segment; anchors, not recompressed, show
    relevance as "·"), tokens/frame and per-stage times; from memory, how many segments were
    recompressed for the question."""
    out = out or sys.stdout
    rows = result["segments"]
    _print_timeline(
        [(r["start"], r["relevance"], r["tokens"]) for r in rows],
        num_memory_tokens,
        budget=result["budget"],
        avg_tokens_per_frame=result["avg_tokens_per_frame"],
        timings=result["timings"],
        out=out,
        unit=result.get("tokens_unit") or "tokens",
    )
    if result["stream"] is None:  # reference mode: every segment was compressed for the question
        return
    candidates = sum(r["kind"] == "candidate" for r in rows)
    dropped = result["anchors_dropped"]
    print(
        f"candidates (query-aware pass): {candidates} of {len(rows)} segments, "
        f"{result['cache_hits']} from cache" + (f"; {dropped} anchors thinned out" if dropped else ""),
        file=out,
    )


def _print_timeline(
    segs: list[tuple[float, float | None, int]],
    num_memory_tokens: int,
    *,
    budget: int,
    avg_tokens_per_frame: float,
    timings: dict[str, float],
    out: TextIO | None = None,
    unit: str = "tokens",
) -> None:
    """Rows of (start seconds, relevance or None, tokens kept) as sparklines, then totals (in `unit`, the
    family's: memory tokens or Qwen3-VL visual tokens) and stage times."""
    out = out or sys.stdout
    print(file=out)
    print(
        f"timeline: {len(segs)} segments; rows of {PER_ROW}; "
        f"relevance 0→1 and tokens 0→{num_memory_tokens} as ▁→█",
        file=out,
    )
    for lo in range(0, len(segs), PER_ROW):
        row = segs[lo : lo + PER_ROW]
        print(f"  {format_clock(row[0][0]):>8}  relevance {_spark([r for _, r, _ in row], 1.0)}", file=out)
        print(
            f"  {'':>8}  tokens    {_spark([float(k) for _, _, k in row], float(num_memory_tokens))}",
            file=out,
        )
    total = sum(k for _, _, k in segs)
    print(
        f"tokens: {total} of budget {budget} ({unit}); {avg_tokens_per_frame:.2f} tokens/frame on average",
        file=out,
    )
    stages = " · ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in timings.items())
    print(f"time: {stages}", file=out)


def _write_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _inference_config(args: argparse.Namespace) -> TempoInferenceConfig:
    """The load-time knobs every form of `tempo ask` takes from its flags."""
    return TempoInferenceConfig(fps=args.fps, context_limit=args.context_limit)


def _ask_settings(args: argparse.Namespace) -> AskSettings:
    """The per-question settings: the defaults, then the flags given."""
    return AskSettings().with_inputs(
        top_k=args.top_k, budget=args.budget, max_new_tokens=args.max_new_tokens
    )


def _memory_service(args: argparse.Namespace) -> TempoService:
    from tempo.service import TempoService

    return TempoService(
        model=args.model,
        embedder=args.embedder,
        redis_url=args.redis_url,
        device=args.device,
        inference=_inference_config(args),
    )


def _ask_memory(args: argparse.Namespace, question: str) -> int:
    """One question from memory: one-shot, or one turn of a conversation thread (the same agent as
    `tempo chat`). Both print the same `TurnResult`."""
    check_streams_first(args.redis_url, [args.stream] if args.stream else args.streams or [])
    from tempo.agent import Conversations
    from tempo.tools.commands.chat import print_turn_extras, printable

    service = _memory_service(args)
    conversations = Conversations(service, settings=_ask_settings(args))

    def write(piece: str) -> None:
        _write_piece(printable(piece))

    on_text = None if args.json else write
    if args.stream is None:  # --streams, --all-streams, or a thread's follow-up on its own streams
        # --all-streams names them all (a thread's set does not apply); an empty memory: one sentence below
        streams = ([s.name for s in service.streams()] or None) if args.all_streams else args.streams
        result = conversations.ask_streams(streams, question, thread_id=args.thread, on_text=on_text)
    elif args.thread is None:
        result = conversations.ask_once(args.stream, question, on_text=on_text)
    else:
        result = conversations.ask(args.stream, question, thread_id=args.thread, on_text=on_text)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print()
    if len(result["streams"] or []) > 1:
        print(f"streams: {', '.join(result['streams'] or [])}")
    if args.thread is None:
        print_report(result, service.model.num_memory_tokens)
        if len(result["streams"] or []) > 1:
            print_turn_extras(result, sys.stdout)
    else:
        print_turn_extras(result, sys.stdout)
        print(f"thread: {result['thread_id']}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    given = (("--stream", args.stream), ("--streams", args.streams), ("--all-streams", args.all_streams))
    chosen = [flag for flag, value in given if value not in (None, False)]
    if len(chosen) > 1:
        args.parser.error(f"{' and '.join(chosen)} exclude each other: give one")
    if chosen or args.thread is not None:  # from memory (--thread alone: the thread's streams)
        if args.router or args.answer_url or args.answer_model:
            args.parser.error("--router, --answer-url and --answer-model are for a Qwen3-VL --model and a video file")
        if args.subtitles:
            args.parser.error("--subtitles is for a VIDEO (a stream keeps the cues given to tempo ingest)")
        if len(args.inputs) != 1:
            flag = (chosen or ["--thread"])[0]
            args.parser.error(f"with {flag}, give only the QUESTION (the video is already in memory)")
        question = check_question(args.inputs[0])
        return _ask_memory(args, question)
    if len(args.inputs) != 2:
        args.parser.error("give VIDEO and QUESTION (or --stream NAME and QUESTION to ask from memory)")
    video, question = args.inputs
    args.video = check(inputs.Name, video, "VIDEO")
    args.question = check_question(question)
    return _ask(args)


def _ask(args: argparse.Namespace) -> int:
    from tempo.streaming.sources import resolve_source

    resolve_source(args.video)  # a missing file or bad scheme is told before the model stack is imported
    from tempo.engine.reference import answer_video
    from tempo.models import resolve_model_name
    from tempo.models.checkpoint import resolve_model_dir
    from tempo.models.qwen3vl_family import load_model_family
    from tempo.streaming import SamplingConfig, iter_segments
    from tempo.streaming.subtitles import load_text_track

    t0 = time.perf_counter()
    config = _inference_config(args)
    # Cheap checks first (model directory, video opens), then the expensive model load.
    model_dir = resolve_model_dir(resolve_model_name(args.model))
    sampling = SamplingConfig(fps=args.fps, window=config.window, max_edge=config.max_edge, sampling=args.sampling)
    show_progress = not args.json and sys.stderr.isatty()
    segments = iter_segments(args.video, config=sampling, progress=show_progress)
    text_track = load_text_track(args.video, args.subtitles)  # as tempo ingest reads them; a bad file: one line
    remote = remote_answerer(model_dir, args.answer_url, args.answer_model)
    model = load_model_family(model_dir, device=args.device, config=config, router=args.router)
    if remote is not None:
        open_family = model  # a Qwen3-VL family (remote_answerer checked the checkpoint)
        open_family.remote = remote  # it answers on the server; its router runs here
    load_s = time.perf_counter() - t0

    result = answer_video(
        model,
        segments,
        args.question,
        settings=_ask_settings(args),
        source=redact_url(args.video),
        model_id=resolve_model_name(args.model),
        on_text=None if args.json else _write_piece,
        progress=show_progress,
        text_track=text_track,
    )
    result["timings"] = {"load_s": round(load_s, 4), **result["timings"]}
    result["timings"]["total_s"] = round(time.perf_counter() - t0, 4)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print()
        print_report(result, model.num_memory_tokens)
    return 0


def _stream_list(text: str) -> list[str]:
    """--streams: comma-separated stream names, each checked; at least one."""
    check_name = arg_type(inputs.StreamName, "name")
    names = [check_name(part.strip()) for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one stream name (e.g. --streams cam1,cam2)")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="answer a question about a video (reference mode) or a stream in memory (--stream)",
        usage=(
            "tempo ask [options] VIDEO QUESTION\n"
            "       tempo ask [options] --stream NAME [--thread ID] QUESTION\n"
            "       tempo ask [options] (--streams A,B,... | --all-streams) [--thread ID] QUESTION"
        ),
        description=(
            "Answer QUESTION about VIDEO the way the Tempo reference does: every segment is compressed "
            "for the question, Adaptive Token Allocation spends the visual budget, the global LLM answers. "
            "With --stream, answer from memory instead: the FAISS top-K segments (and their neighbours) "
            "are recompressed for the question, the rest of the stream enters as minimal anchors."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="[VIDEO] QUESTION", help="video file, URL or device; question")
    add_stream_option(parser, "answer from this memory stream")
    parser.add_argument(
        "--streams",
        default=None,
        metavar="A,B,...",
        type=_stream_list,
        help="answer across these memory streams together (comma-separated): one FAISS search over them all, "
        "one token budget, citations name their stream",
    )
    parser.add_argument(
        "--all-streams", action="store_true", help="answer across every stream in memory (as --streams with all)"
    )
    add_thread_option(
        parser,
        "from memory: continue (or start) this conversation thread; follow-ups use its history, and without "
        "--stream/--streams its streams (unless the question names another stream)",
    )
    add_top_k_option(parser, AskSettings.top_k, "with --stream: candidate segments from FAISS (as tempo chat)")
    add_model_options(parser)
    add_open_weights_options(parser)
    add_memory_options(parser)
    parser.add_argument(
        "--budget",
        type=arg_type(inputs.Budget, "tokens"),
        default=AskSettings.budget,
        help=f"visual token budget B, 1 to {inputs.MAX_BUDGET} (default {AskSettings.budget})",
    )
    parser.add_argument(
        "--sampling",
        choices=("release", "stream"),
        default="release",
        help="how VIDEO's frames are sampled: 'release' (default) as the authors' code does, "
        "N = clamp(round(duration·fps), 4, 1024) frames spread evenly over the whole file, times at "
        "N/duration frames per second; 'stream' on the fixed fps grid that `tempo ingest` and live "
        "sources use",
    )
    add_fps_option(parser)
    parser.add_argument(
        "--context-limit",
        type=arg_type(inputs.ContextLimit, "tokens"),
        default=TempoInferenceConfig.context_limit,
        help=f"LLM context in tokens (default {TempoInferenceConfig.context_limit}); a question that leaves "
        "no room for video is refused",
    )
    add_max_new_tokens_option(parser)
    add_subtitles_option(
        parser,
        "a .srt or .vtt file of VIDEO's cues (repeatable; default: VIDEO.srt or VIDEO.vtt beside it). "
        "Text subtitle streams inside the container are always read; the cues enter the answer's prompt "
        "beside their segments, as from memory",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the result as one JSON object instead of text: the same keys from memory (one-shot "
        "or --thread) and in reference mode (answer, citations, the per-segment timeline, timings, ...)",
    )
    parser.set_defaults(func=_dispatch, parser=parser)
