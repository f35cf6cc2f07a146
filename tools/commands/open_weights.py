"""Options of the open-weights family (a Qwen3-VL answerer behind Tempo's router and ATA)."""

from __future__ import annotations

import argparse

from tempo import inputs
from tempo.inputs import arg_type


def add_open_weights_options(parser: argparse.ArgumentParser) -> None:
    """--router, --answer-url, --answer-model: for a --model whose config.json says qwen3_vl."""
    group = parser.add_argument_group("open weights (a Qwen3-VL --model)")
    group.add_argument(
        "--router",
        default=None,
        type=arg_type(inputs.Name, "path"),
        help="Qwen3-VL checkpoint directory that scores segments (default: the --model answerer itself; "
        "a 2B is the sensible choice)",
    )
    group.add_argument(
        "--answer-url",
        default=None,
        help="(not built yet: refused) an OpenAI-compatible chat-completions server to answer instead of the "
        "local model, e.g. http://HOST:PORT/v1",
    )
    group.add_argument("--answer-model", default=None, help="(not built yet: refused) the model name the --answer-url server serves")
