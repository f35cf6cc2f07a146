"""`tempo ingest SOURCE --stream NAME`: decode, compress and store a source in memory, resumably."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tempo import inputs
from tempo.errors import redact_url
from tempo.inputs import arg_type

# Shared options live in tempo.tools.commands.options; re-exported here for existing importers.
from tempo.tools.commands.options import (
    add_asr_option,
    add_batch_size_option,
    add_decode_option,
    add_memory_options,
    add_model_options,
    add_sampling_options,
    add_source_argument,
    add_stream_option,
    add_subtitles_option,
)

if TYPE_CHECKING:
    from tempo.memory.records import RetentionPolicy
    from tempo.streaming import SamplingConfig

__all__ = ["add_memory_options", "add_model_options", "register", "run"]


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
    add_source_argument(parser, "video file, stream URL (rtsp, rtmp, http(s), udp, tcp, srt), device or -")
    add_stream_option(parser, "memory stream name", required=True)
    add_sampling_options(parser)
    add_decode_option(parser)
    parser.add_argument(
        "--max-age",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=None,
        help="retention: drop segments older than this (seconds, positive)",
    )
    parser.add_argument(
        "--compact-after",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=None,
        help="retention: past this age (seconds) keep only the first --compact-tokens stored tokens of a "
        "segment (what its anchor reads); its metadata, embedding and frames stay",
    )
    parser.add_argument(
        "--compact-tokens",
        type=arg_type(inputs.StoredTokens, "count"),
        default=4,
        help="retention: stored tokens a compacted segment keeps (default 4)",
    )
    parser.add_argument(
        "--cold-after",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=None,
        help="retention: past this age (seconds; e.g. 3600 keeps one hot hour in Redis) move a segment's "
        "token head and proxy clip out of Redis into checksummed shards per stream-hour (--cold-url); its "
        "metadata and embedding stay, and answers read the shards transparently. Default: off",
    )
    parser.add_argument(
        "--cold-url",
        default=None,
        metavar="DIR_OR_URL",
        type=arg_type(inputs.Name, "directory or URL"),
        help="with --cold-after: where the cold shards go, a directory or an fsspec URL such as "
        "s3://bucket/tempo (its fsspec package installed); default: cold/ in the data directory",
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
    add_batch_size_option(parser, "segments")
    parser.add_argument(
        "--queue",
        action="store_true",
        help="be a producer only: decode and segment here and push one job per segment to the stream's "
        "Redis work queue, for `tempo worker` processes to compress and commit (no model is loaded; a "
        "file waits while the queue is full, a live source drops the oldest queued job and counts it)",
    )
    parser.add_argument(
        "--proxy-quality",
        type=arg_type(inputs.ProxyQuality, "CRF"),
        default=None,
        metavar="CRF",
        help="live sources: quality of the proxy clips kept to recompress segments, as an x264 CRF "
        "(0 = lossless … 51 = coarsest; lower is closer to what the compressor saw, and bigger). "
        "Default: what the stream was created with, else 30 (~41-42 dB luma PSNR on detailed content, "
        "~21-27 KiB per 4-s segment); a busy segment above 28 KiB is re-encoded coarser",
    )
    parser.add_argument(
        "--lease-wait",
        type=arg_type(inputs.LeaseWait, "seconds"),
        default=None,
        metavar="S",
        help="seconds to wait, with a countdown, for the stream's writer lease while another process "
        "holds it (default: one lease period, $TEMPO_WRITER_LEASE or 30 s; 0: fail at once). A holder "
        "on this host that is no longer running (a crashed ingest) is taken over at once",
    )
    add_subtitles_option(
        parser,
        "a .srt or .vtt file whose cues the segments keep (repeatable; default: VIDEO.srt or VIDEO.vtt "
        "beside a file). Text subtitle streams inside the container are always read; a malformed cue is "
        "reported with its line number and skipped",
    )
    add_asr_option(
        parser,
        "also transcribe the source's audio track (files and live sources) with this Whisper checkpoint "
        "(a directory or a hub id, e.g. openai/whisper-small), batch by batch as the segments are made; each "
        "segment keeps the speech cues that overlap it, with the language Whisper reports. With --queue, "
        "the jobs carry the audio and the workers transcribe it",
    )
    parser.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    add_model_options(parser)
    add_memory_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the model stack takes seconds to import, and `tempo --help` should not wait.
    from tempo.memory.cold import cold_location
    from tempo.memory.proxy import ProxySettings
    from tempo.memory.records import RetentionPolicy
    from tempo.streaming import SamplingConfig, StreamingError

    retention = None
    if args.cold_url is not None and args.cold_after is None:
        raise StreamingError("--cold-url needs --cold-after (the age past which segments move there).")
    if any(v is not None for v in (args.max_age, args.max_bytes, args.compact_after, args.cold_after)):
        retention = RetentionPolicy(
            max_age=args.max_age,
            max_bytes=args.max_bytes,
            compact_after=args.compact_after,
            compact_tokens=args.compact_tokens,
            cold_after=args.cold_after,
            cold_url=None if args.cold_after is None else cold_location(args.cold_url),
        )
    try:
        sampling = SamplingConfig(fps=args.fps, window=args.window, max_edge=args.max_edge, decode=args.decode)
        proxy = None if args.proxy_quality is None else ProxySettings(crf=args.proxy_quality)
    except ValueError as exc:  # a bad flag value: one line, no traceback
        raise StreamingError(f"{exc}.") from None
    if args.queue:
        return _run_producer(args, sampling, retention)
    from tempo.streaming.sources import resolve_source

    resolve_source(args.source)  # a missing file or bad scheme is told before the model stack is imported
    from tempo.agent.monitoring.ingest import monitored_ingest
    from tempo.service import TempoService

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    report = monitored_ingest(
        service,
        args.source,
        args.stream,
        sampling=sampling,
        retention=retention,
        progress=sys.stderr.isatty() or not args.json,
        max_segments=args.max_segments,
        batch_size=args.batch_size,
        proxy=proxy,
        lease_wait=args.lease_wait,
        subtitles=args.subtitles,
        asr=args.asr,
    )
    return _report(
        args,
        report.to_json(),
        f"stream {report.stream!r}: {report.committed} segments committed "
        f"(from index {report.resumed_from}; last committed {report.last_committed}), "
        f"{report.video_seconds:.1f} s of video in {report.wall_seconds:.1f} s "
        f"({report.realtime_factor:.1f}× realtime)",
        interrupted=report.interrupted,
        gaps=report.gaps,
    )


def _report(
    args: argparse.Namespace, out: dict[str, Any], line: str, *, interrupted: bool, gaps: Sequence[dict[str, Any]] = ()
) -> int:
    """Print the run's report (JSON with the source redacted, or one line and a line per gap in time);
    130 when interrupted."""
    if args.json:
        out["source"] = redact_url(str(out["source"]))
        print(json.dumps(out))
    else:
        print(f"{'interrupted' if interrupted else 'done'}: {line}")
        for gap in gaps:  # recorded in memory: nothing after a gap is lost
            print(f"gap: no video from {gap['start']:.2f} s to {gap['end']:.2f} s")
    if interrupted:
        print("tempo: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _run_producer(args: argparse.Namespace, sampling: SamplingConfig, retention: RetentionPolicy | None) -> int:
    """`tempo ingest --queue`: decode + segment here, queue the jobs (engine/producer.py); no model."""
    from tempo.engine.producer import produce
    from tempo.memory import RedisMemoryStore
    from tempo.memory.jobqueue import JobQueue, JobSpec, QueueSettings
    from tempo.service import absolute_source
    from tempo.streaming import probe_source
    from tempo.streaming.subtitles import load_text_track

    source = absolute_source(args.source)
    if "://" not in source and source != "-":
        probe_source(source, sampling)
    if args.asr is not None and "://" not in source and source != "-":
        from tempo.streaming.audio import FileAudio

        FileAudio(source).close()  # a file without audio is told in one sentence before anything is queued
    text_track = load_text_track(source, args.subtitles)  # each job carries its segment's cues
    store = RedisMemoryStore.connect(args.redis_url)
    queue = JobQueue.for_store(store, QueueSettings.from_env())
    report = produce(source, args.stream, queue=queue, store=store,
                     spec=JobSpec(sampling=sampling, retention=retention, asr=args.asr),
                     max_segments=args.max_segments, lease_wait=args.lease_wait,
                     progress=sys.stderr.isatty() or not args.json, text_track=text_track)
    return _report(
        args,
        report.to_json(),
        f"stream {report.stream!r}: {report.queued} segment jobs queued (from index {report.resumed_from}; "
        f"{report.dropped} dropped by backpressure), {report.video_seconds:.1f} s of video in "
        f"{report.wall_seconds:.1f} s; `tempo worker` processes commit them",
        interrupted=report.interrupted,
    )
