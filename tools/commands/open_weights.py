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
        type=arg_type(inputs.WebhookUrl, "URL"),
        help="OpenAI-compatible chat-completions server (vLLM, SGLang, transformers serve) that answers from "
        "the kept frames and their time tags instead of the local model, e.g. http://HOST:PORT/v1; the local "
        "--model still routes",
    )
    group.add_argument(
        "--answer-model",
        default=None,
        type=arg_type(inputs.Name, "model name"),
        help="the model name the --answer-url server serves",
    )


def remote_answerer(model_dir: object, url: str | None, name: str | None) -> object | None:
    """The `RemoteAnswerer` that --answer-url / --answer-model ask for (None without them), checked before
    any model loads: InvalidInputError for a bad URL, a missing name or a --model that is not Qwen3-VL;
    CheckpointError when its preprocessor_config.json cannot price the frames sent as images."""
    if not url and not name:
        return None
    from tempo.errors import InvalidInputError
    from tempo.models.qwen3vl_family import FAMILY, checkpoint_family
    from tempo.models.remote_answer import RemoteAnswerer
    from tempo.models.renditions import ImagePricing

    if not url or not name:
        raise InvalidInputError("--answer-url and --answer-model go together (the server and the model it serves)")
    if checkpoint_family(model_dir) != FAMILY:  # type: ignore[arg-type]
        raise InvalidInputError("--answer-url needs a Qwen3-VL --model: its router and processor run locally")
    return RemoteAnswerer(url, name, pricing=ImagePricing.from_dir(model_dir))  # type: ignore[arg-type]
