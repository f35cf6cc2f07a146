"""`tempo subtitles add STREAM FILE`: give an ingested stream a text track later (SRT or WebVTT)."""

from __future__ import annotations

import argparse
import json

from tempo import inputs
from tempo.inputs import arg_type
from tempo.tools.commands.options import add_memory_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "subtitles",
        help="add a subtitle file's cues to an already ingested stream",
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
