"""`tempo ingest SOURCE --stream NAME`: decode, compress and store a source in memory, resumably."""

from __future__ import annotations

import argparse
import json
import sys

from tempo import inputs
from tempo.errors import redact_url
from tempo.inputs import arg_type


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that loads the model shares."""
    parser.add_argument(
        "--model",
        default=None,
        type=arg_type(inputs.Name, "path or hub id"),
        help="Tempo checkpoint directory or hub id (default: $TEMPO_MODEL, else Vision-CAIR/Tempo-6B)",
    )
    parser.add_argument(
        "--embedder",
        default=None,
        type=arg_type(inputs.Name, "path or hub id"),
        help="SigLIP directory for segment embeddings (default: $TEMPO_EMBEDDER, else siglip/ beside the "
        "checkpoint, else google/siglip-base-patch16-224)",
    )
    add_device_option(parser)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default=None,
        type=arg_type(inputs.Device, "device"),
        help="torch device: cpu, cuda, cuda:N, mps (default: cuda when available, else cpu); "
        "one this machine lacks is refused",
    )


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """--fps, --window, --max-edge: how a source becomes segments (`tempo ingest`, `tempo segments`)."""
    parser.add_argument(
        "--fps",
        type=arg_type(inputs.Fps, "fps"),
        default=2.0,
        help=f"frames sampled per second, {inputs.MIN_FPS:g} to {inputs.MAX_FPS:g} (default 2)",
    )
    parser.add_argument(
        "--window",
        type=arg_type(inputs.Window, "frames"),
        default=8,
        help=f"frames per segment, 1 to {inputs.MAX_WINDOW} (default 8)",
    )
    parser.add_argument(
        "--max-edge",
        type=arg_type(inputs.FrameEdge, "pixels"),
        default=512,
        help=f"longest frame side in pixels, {inputs.MIN_EDGE} to {inputs.MAX_EDGE}, rounded to 16 (default 512)",
    )


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=None,
        type=arg_type(inputs.RedisUrl, "URL"),
        help="Redis URL (default: $TEMPO_REDIS_URL, else a private redis-server under $TEMPO_HOME)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="store a video or live source in memory",
        description=(
            "Decode SOURCE (file, URL, /dev/videoN or - for stdin), compress each segment with the "
            "generic SVLM pass, embed it, and commit it to memory under --stream. Running the same "
            "command again resumes after the last committed segment; Ctrl-C stops cleanly."
        ),
    )
    parser.add_argument(
        "source",
        type=arg_type(inputs.Name, "source"),
        help="video file, stream URL (rtsp, rtmp, http(s), udp, tcp, srt), device or -",
    )
    parser.add_argument(
        "--stream",
        required=True,
        type=arg_type(inputs.StreamName, "name"),
        help="memory stream name (1-128 letters, digits, '.', '_', '-')",
    )
    add_sampling_options(parser)
    parser.add_argument(
        "--max-age",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=None,
        help="retention: drop segments older than this (seconds, positive)",
    )
    parser.add_argument(
        "--max-bytes",
        type=arg_type(inputs.ByteCount, "bytes"),
        default=None,
        help="retention: keep at most this many bytes (positive)",
    )
    parser.add_argument(
        "--max-segments",
        type=arg_type(inputs.SegmentCount, "count"),
        default=None,
        help="stop after this many segments (positive)",
    )
    parser.add_argument(
        "--batch-size",
        type=arg_type(inputs.BatchSize, "count"),
        default=None,
        help=f"segments per SVLM forward pass, 1 to {inputs.MAX_BATCH} (default: the model's, 8)",
    )
    parser.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    add_model_options(parser)
    add_memory_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the model stack takes seconds to import, and `tempo --help` should not wait.
    from tempo.memory.records import RetentionPolicy
    from tempo.service import TempoService
    from tempo.streaming import SamplingConfig, StreamingError

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    retention = None
    if args.max_age is not None or args.max_bytes is not None:
        retention = RetentionPolicy(max_age=args.max_age, max_bytes=args.max_bytes)
    try:
        sampling = SamplingConfig(fps=args.fps, window=args.window, max_edge=args.max_edge)
    except ValueError as exc:  # a bad flag value: one line, no traceback
        raise StreamingError(f"{exc}.") from None
    report = service.ingest(
        args.source,
        args.stream,
        sampling=sampling,
        retention=retention,
        progress=sys.stderr.isatty() or not args.json,
        max_segments=args.max_segments,
        batch_size=args.batch_size,
    )
    if args.json:
        out = report.to_json()
        out["source"] = redact_url(str(out["source"]))
        print(json.dumps(out))
    else:
        state = "interrupted" if report.interrupted else "done"
        print(
            f"{state}: stream {report.stream!r}: {report.committed} segments committed "
            f"(from index {report.resumed_from}; last committed {report.last_committed}), "
            f"{report.video_seconds:.1f} s of video in {report.wall_seconds:.1f} s "
            f"({report.realtime_factor:.1f}× realtime)"
        )
    if report.interrupted:
        print("tempo: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
