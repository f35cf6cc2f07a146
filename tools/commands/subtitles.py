"""`tempo subtitles add STREAM FILE` / `tempo subtitles transcribe STREAM --asr DIR`: give an ingested
stream a text track later, from a subtitle file (SRT or WebVTT) or by speech recognition of its file."""

from __future__ import annotations

import argparse
import json

from tempo import inputs
from tempo.inputs import arg_type
from tempo.tools.commands.options import add_asr_option, add_memory_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "subtitles",
        help="give an already ingested stream a text track: a subtitle file's cues, or its transcribed speech",
        description="Subtitles as timed memory: each segment keeps the cues that overlap it.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add the cues of a .srt or .vtt file to STREAM's segments (times in stream seconds)",
        description="Each committed segment of STREAM gets the cues of FILE that overlap it (beside any cues "
        "it has; one already there is not added twice). A malformed cue is reported with its line number "
        "and skipped; a file with no valid cue changes nothing.",
    )
    add.add_argument("stream", type=arg_type(inputs.StreamName, "stream"), help="an ingested stream")
    add.add_argument("file", help="the subtitle file (.srt or .vtt)")
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add_memory_options(add)
    add.set_defaults(func=run_add)
    register_transcribe(actions)


def register_transcribe(actions: argparse._SubParsersAction) -> None:
    transcribe = actions.add_parser(
        "transcribe",
        help="transcribe the speech of STREAM's stored file with Whisper onto its segments",
        description="The file STREAM was ingested from (it must still be there, unchanged) is listened to "
        "batch by batch on the segments' own timeline; each batch's speech cues are committed onto its "
        "segments at once (Ctrl-C loses at most the batch in flight). Segments that already carry speech "
        "cues are skipped, so a rerun adds nothing twice and resumes where an interrupted run stopped.",
    )
    transcribe.add_argument("stream", type=arg_type(inputs.StreamName, "stream"), help="a stream ingested from a file")
    add_asr_option(
        transcribe,
        "the Whisper checkpoint: a directory or a hub id on disk, e.g. openai/whisper-small",
        required=True,
    )
    transcribe.add_argument(
        "--batch-size",
        type=arg_type(inputs.BatchSize, "count"),
        default=None,
        help=f"segments per Whisper batch (and per commit), 1 to {inputs.MAX_BATCH} (default 8)",
    )
    transcribe.add_argument(
        "--device",
        default=None,
        type=arg_type(inputs.Device, "device"),
        help="torch device for Whisper: cpu, cuda, cuda:N, mps, xpu, xpu:N (default: cuda when available, "
        "else cpu); one this machine lacks is refused",
    )
    transcribe.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_memory_options(transcribe)
    transcribe.set_defaults(func=run_transcribe)


def run_add(args: argparse.Namespace) -> int:
    import sys

    from tempo.engine.text_track import add_text_track
    from tempo.memory import RedisMemoryStore
    from tempo.streaming.subtitles import read_subtitle_file

    track = read_subtitle_file(args.file)  # refused in one sentence before anything is touched
    for problem in track.problems:
        print(f"tempo: {problem}", file=sys.stderr)
    store = RedisMemoryStore.connect(args.redis_url)
    segments, cues = add_text_track(store, args.stream, track)
    out = {"stream": args.stream, "file": args.file, "cues_read": len(track), "cues_placed": cues,
           "segments_updated": segments, "skipped": len(track.problems)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"stream {args.stream!r}: {cues} cue placements on {segments} segments "
              f"({len(track)} cues read, {len(track.problems)} skipped)")
    return 0


def run_transcribe(args: argparse.Namespace) -> int:
    import sys

    from tempo.engine.speech_later import BATCH_SEGMENTS, open_stream_audio, transcribe_stream
    from tempo.memory import RedisMemoryStore

    store = RedisMemoryStore.connect(args.redis_url)
    # A live source, a file gone, changed or without audio: one sentence before Whisper is loaded.
    open_stream_audio(store.stream_info(args.stream)).close()
    from tempo.models.asr import SpeechRecognizer
    from tempo.models.device import pick_device

    recognizer = SpeechRecognizer(args.asr, device=str(pick_device(args.device)))
    report = transcribe_stream(store, args.stream, recognizer, asr=args.asr,
                               batch_size=args.batch_size or BATCH_SEGMENTS,
                               progress=sys.stderr.isatty() or not args.json)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(f"{'interrupted' if report.interrupted else 'done'}: stream {args.stream!r}: {report.cues} speech "
              f"cues on {report.updated} segments ({report.transcribed} segments, {report.audio_seconds:.1f} s "
              f"of audio listened to; {report.skipped} already had speech cues)")
    if report.interrupted:
        print("tempo: interrupted; run the same command again to transcribe the rest", file=sys.stderr)
        return 130
    return 0
