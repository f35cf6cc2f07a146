"""`tempo eval BENCHMARK --data DIR`: the paper's benchmarks, scored as the release scores them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tempo.eval.prompts import BENCHMARKS


def _run(args: argparse.Namespace) -> int:
    from tempo.eval.errors import AnnotationError
    from tempo.eval.harness import EvalSettings, run_eval
    from tempo.eval.summary import summary_path

    if args.subtitles and args.benchmark != "videomme":
        raise AnnotationError("--subtitles is Video-MME's setting: use it with `tempo eval videomme`.")
    subs = "-subtitles" if args.subtitles else ""
    out = args.out or Path(f"results-{args.benchmark}{subs}-{args.mode}-{args.budget}.jsonl")
    settings = EvalSettings(
        benchmark=args.benchmark,
        data=Path(args.data),
        model=args.model,
        budget=args.budget,
        mode=args.mode,
        limit=args.limit,
        out=Path(out),
        device=args.device,
        embedder=args.embedder,
        top_k=args.top_k,
        redis_url=args.redis_url,
        subtitles=args.subtitles,
    )
    report = run_eval(settings, progress=sys.stderr.isatty())
    print(report.markdown())
    earlier = len(report.records) - report.ran
    print(f"\nresults: {settings.out} ({report.ran} answered now, {earlier} from earlier runs); "
          f"summary: {summary_path(settings.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from tempo import inputs
    from tempo.inputs import arg_type
    from tempo.settings import AskSettings
    from tempo.tools.commands.options import add_memory_options, add_model_options, add_top_k_option

    parser = subparsers.add_parser(
        "eval",
        help="score a checkpoint on LVBench, Video-MME, MLVU or LongVideoBench",
        description=(
            "Answer every question of BENCHMARK (annotations and videos under --data, laid out as the "
            "public downloads are; see the README's Evaluate section) with the release's prompt, answer "
            "length and context limit, read the option letter as lmms-eval does, and print accuracy "
            "overall and per category beside the paper's numbers. Each answer is appended to --out at "
            "once: running the same command again skips finished questions."
        ),
    )
    parser.add_argument("benchmark", choices=list(BENCHMARKS), help="which benchmark")
    parser.add_argument("--data", required=True, metavar="DIR", type=arg_type(inputs.Name, "path"),
                        help="the benchmark's downloaded directory")
    add_model_options(parser)
    parser.add_argument("--budget", type=arg_type(inputs.Budget, "tokens"), default=8192,
                        help="visual token budget B; the paper reports 4096 and 8192 (default 8192)")
    parser.add_argument("--mode", choices=("reference", "memory"), default="reference",
                        help="reference: the paper's method, whole video per question (default); memory: "
                             "ingest each video once and answer from memory (top-K candidates)")
    # Memory mode answers as `tempo ask --stream` does, so its table measures what users get.
    add_top_k_option(parser, AskSettings.top_k, "memory mode: candidate segments per question")
    parser.add_argument("--subtitles", action="store_true",
                        help="Video-MME with subtitles: each question is prefixed with its video's subtitles "
                             "(subtitle/VIDEOID.srt under --data), as lmms-eval's videomme_w_subtitle task")
    parser.add_argument("--limit", type=arg_type(inputs.SegmentCount, "count"), default=None, metavar="N",
                        help="only the first N questions")
    parser.add_argument("--out", default=None, metavar="FILE", type=arg_type(inputs.Name, "path"),
                        help="results, one JSON line per question (default results-BENCHMARK-MODE-BUDGET.jsonl)")
    add_memory_options(parser)
    parser.set_defaults(func=_run)
