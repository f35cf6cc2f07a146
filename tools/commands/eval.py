"""`tempo eval BENCHMARK --data DIR`: the paper's benchmarks, scored as the release scores them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tempo.eval.prompts import BENCHMARKS
from tempo.models.config import DEFAULT_MODEL_ID


def _run(args: argparse.Namespace) -> int:
    from tempo.eval.harness import EvalSettings, run_eval

    out = args.out or Path(f"results-{args.benchmark}-{args.mode}-{args.budget}.jsonl")
    settings = EvalSettings(
        benchmark=args.benchmark,
        data=Path(args.data),
        model=args.model,
        budget=args.budget,
        mode=args.mode,
        limit=args.limit,
        out=Path(out),
        device=args.device,
        top_k=args.top_k,
        redis_url=args.redis_url,
    )
    report = run_eval(settings, progress=sys.stderr.isatty())
    print(report.markdown())
    earlier = len(report.records) - report.ran
    print(f"\nresults: {settings.out} ({report.ran} answered now, {earlier} from earlier runs)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from tempo.tools.commands.ask import _positive
    from tempo.tools.commands.ingest import add_memory_options

    positive_int = _positive(int)

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
    parser.add_argument("--data", required=True, metavar="DIR", help="the benchmark's downloaded directory")
    parser.add_argument(
        "--model", default=None,
        help=f"checkpoint directory or hub id on disk (default: $TEMPO_MODEL, else {DEFAULT_MODEL_ID})",
    )
    parser.add_argument("--budget", type=positive_int, default=8192,
                        help="visual token budget B; the paper reports 4096 and 8192 (default 8192)")
    parser.add_argument("--mode", choices=("reference", "memory"), default="reference",
                        help="reference: the paper's method, whole video per question (default); memory: "
                             "ingest each video once and answer from memory (top-K candidates)")
    parser.add_argument("--top-k", type=positive_int, default=8, help="memory mode: candidate segments (default 8)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="only the first N questions")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="results, one JSON line per question (default results-BENCHMARK-MODE-BUDGET.jsonl)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_memory_options(parser)
    parser.set_defaults(func=_run)
