"""The `tempo` command: one sub-command per module under tempo.tools.commands.

User mistakes (bad path, bad URL, missing model, unknown stream) are `TempoError`s: one line on stderr
and a non-zero exit, never a traceback. A bad flag value is refused by the parser, also in one line
(`tempo ask: error: argument --fps: ...`, exit 2): every flag that takes a value has a `type=` built
from tempo.inputs, the one place that defines inputs and their limits. Messages pass through
`redact_secrets`, so a URL's password never reaches the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tempo import __version__
from tempo.errors import TempoError, redact_secrets

# Each module exposes `register(subparsers) -> None`; the parser it adds sets `func(args) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "tempo.tools.commands.demo",
    "tempo.tools.commands.segments",
    "tempo.tools.commands.ingest",
    "tempo.tools.commands.worker",
    "tempo.tools.commands.queue",
    "tempo.tools.commands.streams",
    "tempo.tools.commands.ask",
    "tempo.tools.commands.search",
    "tempo.tools.commands.chat",
    "tempo.tools.commands.threads",
    "tempo.tools.commands.mcp",
    "tempo.tools.commands.serve",
    "tempo.tools.commands.model",
    "tempo.tools.commands.memory",
    "tempo.tools.commands.rules",
    "tempo.tools.commands.alerts",
    "tempo.tools.commands.eval",
    "tempo.tools.commands.subtitles",
)


def one_line(text: str) -> str:
    """`text` as one line for stderr: credentials redacted, line breaks folded."""
    return " ".join(redact_secrets(str(text)).split())


class TempoArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (`PROG: error: MESSAGE (see PROG --help)`, exit 2).

    Sub-command parsers are made with the same class (argparse's default `parser_class`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def _redact_record(record: logging.LogRecord) -> bool:
    """Logging filter: a URL's credentials never reach the log either."""
    message = record.getMessage()
    redacted = redact_secrets(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = TempoArgumentParser(
        prog="tempo",
        description=(
            "Ask questions about live camera feeds and long recordings. Tempo compresses each video "
            "segment into a few memory tokens, keeps them in Redis + FAISS, and answers with timestamps."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tempo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (already printed in one line), --help or --version
        return exc.code if isinstance(exc.code, int) else 2
    if not args.verbose:
        # transformers' own advice and weight-loading bars are noise to a user of this command (our
        # commands show their own progress); -v lets them through.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="tempo: %(levelname)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_redact_record)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TempoError as exc:
        print(f"tempo: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tempo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tempo segments x | head`: the reader went away; not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
