"""The options several commands share, each defined once with its type from tempo.inputs (the one
place for inputs and their limits), so `--fps` or `--stream` is validated the same way everywhere."""

from __future__ import annotations

import argparse

from tempo import inputs
from tempo.inputs import arg_type
from tempo.models.config import DEFAULT_MODEL_ID
from tempo.settings import AskSettings


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --embedder, --device: every command that loads the model."""
    parser.add_argument(
        "--model",
        default=None,
        type=arg_type(inputs.Name, "path or hub id"),
        help=f"Tempo or Qwen3-VL checkpoint directory, or a hub id on disk (default: $TEMPO_MODEL, else "
        f"{DEFAULT_MODEL_ID}); the checkpoint chooses the family",
    )
    parser.add_argument(
        "--embedder",
        default=None,
        type=arg_type(inputs.Name, "path or hub id"),
        help="SigLIP directory for segment and question embeddings (default: $TEMPO_EMBEDDER, else siglip/ "
        "beside the checkpoint, else google/siglip-base-patch16-224)",
    )
    parser.add_argument(
        "--device",
        default=None,
        type=arg_type(inputs.Device, "device"),
        help="torch device: cpu, cuda, cuda:N, mps, xpu, xpu:N (default: cuda when available, else cpu); "
        "one this machine lacks is refused",
    )


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=None,
        type=arg_type(inputs.RedisUrl, "URL"),
        help="Redis URL (default: $TEMPO_REDIS_URL, else a private redis-server under $TEMPO_HOME)",
    )


def check_streams_first(redis_url: str | None, names: list[str]) -> None:
    """Unknown streams (or an unreachable Redis) told in one sentence before the model stack (torch,
    seconds to import) is: the memory options' Redis, read without a model."""
    from tempo.memory import RedisMemoryStore

    store = RedisMemoryStore.connect(redis_url)
    for name in names:
        store.stream_info(name)


def add_listen_options(parser: argparse.ArgumentParser, *, port: int) -> None:
    """--host, --port: where an HTTP server listens (loopback unless told otherwise)."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        type=arg_type(inputs.Name, "host"),
        help="address to listen on (default 127.0.0.1, loopback)",
    )
    parser.add_argument(
        "--port", type=arg_type(inputs.Port, "port"), default=port, help=f"port, 1 to 65535 (default {port})"
    )


DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: JSON requests are a few KiB


def add_max_body_option(parser: argparse.ArgumentParser) -> None:
    """--max-body: the largest request body an HTTP server reads (413 beyond; chunked bodies counted)."""
    parser.add_argument(
        "--max-body",
        type=arg_type(inputs.ByteCount, "bytes"),
        default=DEFAULT_MAX_BODY,
        help="largest request body in bytes (default 1 MiB); larger ones get 413",
    )


def add_asr_option(parser: argparse.ArgumentParser, help: str, *, required: bool = False) -> None:
    """--asr DIR|HUB_ID: a Whisper checkpoint (judged when it loads); `help` says what it transcribes."""
    parser.add_argument(
        "--asr",
        default=None,
        required=required,
        metavar="DIR|HUB_ID",
        type=arg_type(inputs.Name, "checkpoint"),
        help=help,
    )


def add_subtitles_option(parser: argparse.ArgumentParser, help: str) -> None:
    """--subtitles PATH (repeatable): subtitle files read beside the source's own text streams."""
    parser.add_argument(
        "--subtitles", action="append", default=[], metavar="PATH", type=arg_type(inputs.Name, "path"), help=help
    )


def add_batch_size_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--batch-size: `what` (segments, jobs) per SVLM forward pass."""
    parser.add_argument(
        "--batch-size",
        type=arg_type(inputs.BatchSize, "count"),
        default=None,
        help=f"{what} per SVLM forward pass, 1 to {inputs.MAX_BATCH} (default: the model's, 8)",
    )


def add_source_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("source", metavar="SOURCE", type=arg_type(inputs.Name, "source"), help=help)


def add_fps_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fps",
        type=arg_type(inputs.Fps, "fps"),
        default=2.0,
        help=f"frames sampled per second, {inputs.MIN_FPS:g} to {inputs.MAX_FPS:g} (default 2)",
    )


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """--fps, --window, --max-edge: how a source becomes segments."""
    add_fps_option(parser)
    parser.add_argument(
        "--window",
        type=arg_type(inputs.Window, "frames"),
        default=8,
        help=f"frames per segment, 1 to {inputs.MAX_WINDOW} (default 8)",
    )
    parser.add_argument(
        "--max-edge",
        type=arg_type(inputs.FrameEdge, "pixels"),
        default=512,
        help=f"longest frame side in pixels, {inputs.MIN_EDGE} to {inputs.MAX_EDGE}, rounded to 16 (default 512)",
    )


def add_stream_option(parser: argparse.ArgumentParser, help: str, *, required: bool = False) -> None:
    parser.add_argument(
        "--stream",
        default=None,
        required=required,
        metavar="NAME",
        type=arg_type(inputs.StreamName, "name"),
        help=f"{help} (1-128 letters, digits, '.', '_', '-')",
    )


def add_thread_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--thread", default=None, metavar="ID", type=arg_type(inputs.ThreadId, "thread id"), help=help)


def add_top_k_option(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    shown = AskSettings.top_k if default is None else default  # None: the answer path's default
    parser.add_argument(
        "--top-k",
        type=arg_type(inputs.TopK, "count"),
        default=default,
        help=f"{help}, 1 to {inputs.MAX_TOP_K} (default {shown})",
    )


def add_max_new_tokens_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-new-tokens",
        type=arg_type(inputs.NewTokens, "tokens"),
        default=None,
        help=f"longest answer in tokens, 1 to {inputs.MAX_NEW_TOKENS} (default {AskSettings.max_new_tokens})",
    )


def add_decode_option(parser: argparse.ArgumentParser) -> None:
    """--decode auto|cpu|gpu (tempo ingest, tempo segments): where files are decoded and resized."""
    parser.add_argument(
        "--decode",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="where files are decoded and resized: gpu (NVDEC + torch, not bit-exact), cpu (exact), "
        "auto (default: gpu when available)",
    )
