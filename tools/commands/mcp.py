"""`tempo mcp [--http --port P --host H --token T]`: serve Tempo's tools over MCP (stdio or HTTP).

The server itself is tempo.tools.mcp_server (also runnable as `python -m tempo.tools.mcp_server`);
it is imported only when the command runs, so other commands do not pay for torch and the SDK.
"""

from __future__ import annotations

import argparse

from tempo import inputs
from tempo.inputs import arg_type
from tempo.settings import ENV_MCP_TOKEN
from tempo.tools.commands.options import (
    add_listen_options,
    add_max_body_option,
    add_max_new_tokens_option,
    add_memory_options,
    add_model_options,
)

TOKEN_ENV = ENV_MCP_TOKEN


def add_token_options(parser: argparse.ArgumentParser) -> None:
    """--token-file / --token: the bearer token of an HTTP server (also read from $TEMPO_MCP_TOKEN)."""
    parser.add_argument(
        "--token-file",
        default=None,
        metavar="PATH",
        type=arg_type(inputs.Name, "path"),
        help=f"file holding the bearer token clients must send (else ${TOKEN_ENV}); needed off loopback; "
        "at least 16 characters",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token on the command line (visible in `ps`: prefer ${TOKEN_ENV} or --token-file)",
    )


def add_mcp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    add_listen_options(parser, port=8765)  # with --http
    add_max_body_option(parser)  # with --http
    add_token_options(parser)
    add_max_new_tokens_option(parser)
    add_model_options(parser)
    add_memory_options(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mcp",
        help="serve ask_video / search_moments / list_streams to other agents over MCP",
        description=(
            "Serve Tempo as an MCP server: over stdio by default, or streamable HTTP with --http "
            "(endpoint /mcp, GET /health). HTTP listens on 127.0.0.1 unless --host says otherwise; any "
            f"non-loopback address needs a bearer token (${TOKEN_ENV} or --token-file). `tempo serve` serves "
            "the same endpoint at /mcp beside the REST API and the console."
        ),
    )
    add_mcp_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tempo.tools.mcp_server import run

    return run(args)
