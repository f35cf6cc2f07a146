"""`tempo serve`: the HTTP server — REST API (/v1, OpenAPI at /docs), MCP (/mcp), /health, /metrics
and the web console (/). The server itself is tempo.tools.server, imported only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tempo import inputs
from tempo.inputs import arg_type
from tempo.tools.commands.mcp import TOKEN_ENV, add_token_options
from tempo.tools.commands.options import (
    add_asr_option,
    add_listen_options,
    add_max_body_option,
    add_max_new_tokens_option,
    add_memory_options,
    add_model_options,
)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    add_listen_options(parser, port=8000)
    add_token_options(parser)
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        type=arg_type(inputs.Origin, "origin"),
        help="allow browser pages of this origin (e.g. https://ops.example.com) to call the API; repeatable; "
        "CORS is off without it",
    )
    parser.add_argument(
        "--media-root",
        default=None,
        metavar="DIR",
        type=arg_type(inputs.Name, "directory"),
        help="directory whose files clients may ingest (symlinks resolved; nothing outside); without it, "
        "only camera URLs can be ingested over HTTP",
    )
    parser.add_argument(
        "--deny-private-networks",
        action="store_true",
        help="refuse ingest sources (every scheme) and webhook receivers on loopback, private, reserved or "
        "link-local addresses, and follow no HTTP redirect of a source (the same as "
        "TEMPO_DENY_PRIVATE_NETWORKS=1; cloud metadata hosts are always refused)",
    )
    parser.add_argument(
        "--max-queue",
        type=arg_type(inputs.QueueLength, "count"),
        default=8,
        help="questions that may wait for the model before 429 (default 8)",
    )
    parser.add_argument(
        "--ask-timeout",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=300.0,
        help="seconds a question may wait and run before 504 (default 300)",
    )
    add_max_body_option(parser)
    parser.add_argument(
        "--max-upload",
        type=arg_type(inputs.ByteCount, "bytes"),
        default=2 << 30,
        help="largest video file the console (POST /v1/streams/S/upload) may upload into --media-root/uploads, "
        "in bytes (default 2 GiB)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request on stderr (client, method, path, status, bytes, seconds); tokens "
        "and secret query values are redacted, headers and bodies never logged",
    )
    add_asr_option(
        parser,
        "Whisper checkpoint (a directory or a hub id, e.g. openai/whisper-small) with which ingest jobs "
        "asked with \"asr\": true (POST /v1/streams/S/ingest) transcribe the source's audio track, as "
        "`tempo ingest --asr` does; without it such jobs are refused (clients never name a checkpoint)",
    )
    add_max_new_tokens_option(parser)
    add_model_options(parser)
    add_memory_options(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP server: REST API, MCP endpoint and web console",
        description=(
            "Serve Tempo over HTTP: the REST API under /v1 (OpenAPI at /docs), the MCP endpoint at /mcp, "
            "/health, /metrics (Prometheus) and the web console at /. Listens on 127.0.0.1 unless --host "
            f"says otherwise; any non-loopback address needs a bearer token (${TOKEN_ENV} or --token-file). "
            "Rules and alerts (see `tempo rules`) are under /v1/rules and /v1/alerts, with a live SSE feed; "
            "with $TEMPO_WEBHOOK_SECRET set, the server delivers rule webhooks while it runs."
        ),
    )
    add_serve_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import os
    import sys

    from tempo.settings import ENV_DENY_PRIVATE_NETWORKS, deny_private_networks
    from tempo.tools import http_run
    from tempo.tools.http_security import require_token_off_loopback, resolve_token
    from tempo.tools.server_sources import SourceNotAllowedError

    # What a user can get wrong is checked before the model stack is imported (seconds): the token,
    # the media root, and the port (bound here, served once the app is built).
    token = resolve_token(flag=args.token, token_file=args.token_file)
    require_token_off_loopback(args.host, token, "tempo")
    media_root = None
    if args.media_root is not None:
        media_root = Path(args.media_root).expanduser()
        if not media_root.is_dir():
            raise SourceNotAllowedError(f"--media-root {args.media_root!r} is not a directory")
    deny_private = args.deny_private_networks or deny_private_networks()
    if deny_private:  # for the whole process: FFmpeg's opens (no redirects) and webhook deliveries
        os.environ[ENV_DENY_PRIVATE_NETWORKS] = "1"
    sock = http_run.bind(args.host, args.port)
    from tempo.service import TempoService
    from tempo.tools.server import ServeSettings, create_app

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    settings = ServeSettings(
        token=token,
        cors_origins=tuple(args.cors_origin),
        media_root=media_root,
        deny_private_networks=deny_private,
        max_queue=args.max_queue,
        ask_timeout=args.ask_timeout,
        max_body_bytes=args.max_body,
        max_upload_bytes=args.max_upload,
        max_new_tokens=args.max_new_tokens,
        access_log=args.access_log,
        asr=args.asr,
    )
    app = create_app(service, settings)

    def announce(base: str) -> None:
        print(f"tempo serve: {base}/ (API /v1, docs /docs, MCP /mcp)", file=sys.stderr, flush=True)

    # Memory retention runs for the server's whole life, as in `tempo mcp`, and stops with it:
    # `http_run.serve` returns after SIGTERM or Ctrl-C instead of letting the signal kill the process.
    with service.start_retention():
        return http_run.serve(app, host=args.host, port=args.port, on_listen=announce, sock=sock,
                              log_level="warning", server_header=False)
