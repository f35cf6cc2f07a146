"""`tempo model tiny DIR [--seed N] [--family tempo|qwen3-vl]`: write a small random checkpoint in the
released layout of the family (Tempo, or a Qwen3-VL answerer/router)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tempo import inputs
from tempo.errors import InvalidInputError
from tempo.inputs import arg_type


def _tiny(args: argparse.Namespace) -> int:
    if args.family == "qwen3-vl":
        from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl as write
    else:
        from tempo.models.tiny import write_tiny_checkpoint as write
    try:
        out = write(Path(args.dir), seed=args.seed)
    except OSError as exc:  # /proc/nope, a read-only disk, a file where the directory should be
        reason = exc.strerror or type(exc).__name__
        raise InvalidInputError(f"cannot write a checkpoint to {args.dir!r}: {reason}") from None
    print(out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="manage Tempo checkpoints (tiny test checkpoints)")
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION")
    tiny = sub.add_parser(
        "tiny",
        help="write a tiny randomly initialised checkpoint (released layout) for tests and the demo",
        description=(
            "Write a tiny, randomly initialised Tempo checkpoint in exactly the released layout "
            "(config.json, safetensors, offline tokenizer, Qwen3-VL processor files and a base-SVLM "
            "directory). Deterministic for a seed; its answers are meaningless."
        ),
    )
    tiny.add_argument(
        "dir", metavar="DIR", type=arg_type(inputs.Name, "directory"), help="directory to write (created if missing)"
    )
    tiny.add_argument(
        "--seed",
        type=arg_type(inputs.Seed, "seed"),
        default=0,
        help="random seed for the weights, 0 or more (default 0)",
    )
    tiny.add_argument(
        "--family",
        choices=("tempo", "qwen3-vl"),
        default="tempo",
        help="tempo: a Tempo checkpoint (default); qwen3-vl: a Qwen3-VL answerer/router in the layout of "
        "Qwen/Qwen3-VL-*-Instruct (config, safetensors, tokenizer, processor, chat template)",
    )
    tiny.set_defaults(func=_tiny)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])
