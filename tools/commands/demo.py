"""`tempo demo`: the whole system on embedded defaults, with nothing to set up.

Generates a short time-coded video, shows its segments, ingests it into memory (a private Redis
under $TEMPO_HOME), and answers a question from memory. Without a trained checkpoint on the machine
it writes a tiny randomly initialised one first: every stage then runs for real, but the answer is
noise — pass --model (or set TEMPO_MODEL) to a real Tempo checkpoint for real answers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tempo import inputs
from tempo.inputs import arg_type
from tempo.settings import AskSettings, environment

DEMO_STREAM = "demo"
DEMO_QUESTION = "What changes on the screen around the middle of the video?"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a generated video (no setup needed)",
        description=(
            "Generate a 60 s demo video, show its segments, ingest it into memory and answer a question "
            "from memory. Uses --model / $TEMPO_MODEL when given, else a tiny random checkpoint (the "
            "answer is then noise: no trained weights are downloaded)."
        ),
    )
    parser.add_argument(
        "--model",
        default=None,
        type=arg_type(inputs.Name, "path or hub id"),
        help="Tempo checkpoint directory (default: $TEMPO_MODEL, else a tiny random one)",
    )
    parser.add_argument(
        "--question", default=DEMO_QUESTION, type=arg_type(inputs.Question, "question"),
        help="question to ask about the demo video",
    )
    parser.add_argument(
        "--duration",
        type=arg_type(inputs.DemoSeconds, "seconds"),
        default=60.0,
        help=f"demo video length in seconds, 4 to {inputs.MAX_DEMO_SECONDS:g} (default 60)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tempo.agent.conversations import Conversations
    from tempo.agent.monitoring.ingest import monitored_ingest
    from tempo.memory.embedded import tempo_home
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.service import TempoService
    from tempo.streaming import SamplingConfig, iter_segments
    from tempo.streaming.synthetic import write_test_video
    from tempo.tools.commands.ask import print_report
    from tempo.tools.commands.chat import printable
    from tempo.tools.commands.segments import print_table

    home = tempo_home()
    demo_dir = home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    video = demo_dir / f"demo-{int(args.duration)}s.mp4"
    if not video.exists():
        print(f"writing a {args.duration:.0f} s demo video to {video}")
        tmp = video.with_suffix(".part.mp4")
        write_test_video(tmp, duration=args.duration, fps=30.0, size=(640, 360), texture=True)
        os.replace(tmp, video)

    print("\n== segments (2 fps, 8-frame windows)")
    sampling = SamplingConfig()
    with iter_segments(str(video), config=sampling) as segments:
        print_table(segments, sampling)

    model = args.model or environment().model
    if not model:
        tiny = home / "models" / "tiny-demo"
        if not (tiny / "config.json").exists():
            write_tiny_checkpoint(tiny, seed=0)
        model = str(tiny)
        print(
            "\nnote: no trained Tempo weights on this machine, so the demo uses a tiny randomly initialised "
            f"checkpoint ({tiny}). Every stage runs for real; the answer text is noise. Pass --model DIR "
            "or set TEMPO_MODEL for real answers.",
            file=sys.stderr,
        )

    service = TempoService(model=model)
    stream = f"{DEMO_STREAM}-{Path(model).name}".replace("/", "-")[:100]
    print(f"\n== ingest into memory stream {stream!r} (resumes if already there)")
    report = monitored_ingest(service, str(video), stream, progress=sys.stderr.isatty())
    print(
        f"{report.committed} new segments committed, last committed {report.last_committed}, "
        f"{report.realtime_factor:.1f}× realtime"
    )

    print(f"\n== ask from memory: {args.question}")
    result = Conversations(service).ask_once(stream, args.question, settings=AskSettings(max_new_tokens=32))
    print(f"answer: {printable(result['answer'])}")
    print_report(result, service.model.num_memory_tokens)
    return 0
