"""`tempo segments SOURCE`: decode, sample and segment a source, and show the segments."""

from __future__ import annotations

import argparse
import json
import sys

from tempo import inputs
from tempo.errors import redact_url
from tempo.inputs import arg_type
from tempo.streaming import SamplingConfig, SegmentStream, iter_segments
from tempo.tools.commands.options import add_decode_option, add_sampling_options, add_source_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segments",
        help="decode a video source and list its segments (windows of sampled frames)",
        description=(
            "Decode SOURCE (a file, a network URL such as rtsp://, udp://, http(s):// or HLS, a capture "
            "device /dev/videoN, or - for standard input), sample it by timestamps and cut it into "
            "windows of frames. Prints index, start, end (the next window's start) and frame count."
        ),
    )
    add_source_argument(parser, "file path, URL, /dev/videoN or - (stdin)")
    add_sampling_options(parser)
    add_decode_option(parser)
    parser.add_argument(
        "--start-segment",
        type=arg_type(inputs.SegmentIndex, "index"),
        default=0,
        help="resume a file at this segment index (0 or more)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=run)


def print_table(segments: SegmentStream, config: SamplingConfig) -> None:
    """A header line about the source, then one row per segment (index, start, end seconds, frames)."""
    info = segments.info
    size = f"{info.width}x{info.height}" if info.width else "?"
    print(f"# {redact_url(info.uri)}: {info.kind}, {info.container or '?'} / {info.codec or '?'} {size}, "
          f"sampled at {config.fps:g} fps, {config.window} frames per segment")
    print(f"{'index':>6}  {'start':>10}  {'end':>10}  {'frames':>6}")
    for segment in segments:
        gap = f"  (gap {segment.gap_before:.2f} s before)" if segment.gap_before > 0 else ""
        print(f"{segment.index:>6}  {segment.start:>10.3f}  {segment.end:>10.3f}  "
              f"{segment.num_frames:>6}{gap}", flush=info.live)


def run(args: argparse.Namespace) -> int:
    try:
        config = SamplingConfig(fps=args.fps, window=args.window, max_edge=args.max_edge, decode=args.decode)
    except ValueError as exc:
        # A bad flag value is a user mistake: one line, no traceback.
        from tempo.streaming.errors import StreamingError

        raise StreamingError(f"{exc}.") from None
    # A progress bar only where a person watches, and never in the way of --json on stdout.
    show_progress = sys.stderr.isatty()
    with iter_segments(args.source, config=config, start_segment=args.start_segment,
                       progress=show_progress) as segments:
        if args.json:
            listed = [segment.to_dict() for segment in segments]
            source = segments.info.to_dict()
            source["uri"] = redact_url(source["uri"])
            print(json.dumps({"source": source, "segments": listed}))
        else:
            print_table(segments, config)
        stats = segments.stats
    if stats.decode_errors:
        print(f"tempo: warning: {stats.decode_errors} undecodable packets or frames were skipped",
              file=sys.stderr)
    return 0
