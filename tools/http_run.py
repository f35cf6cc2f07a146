"""Running an ASGI app under uvicorn for `tempo serve` and `tempo mcp --http`.

Two things uvicorn does its own way are made the CLI's way here:
  * the listening socket is bound before uvicorn starts, so an address in use or a host that does
    not resolve is one sentence (`ListenError`) instead of uvicorn's log line and exit code 3;
  * SIGTERM (`docker stop`, systemd, Kubernetes) and SIGINT stop the server gracefully and then
    *return*: uvicorn re-raises the signal after its shutdown, which kills the process before the
    caller's `with` blocks (retention, webhook delivery) close. `serve` returns 0 after SIGTERM, a
    stop that was asked for, and 130 after Ctrl-C, as the other commands do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import h11
import uvicorn
from tempo.tools.errors import ListenError
from uvicorn.protocols.http.h11_impl import H11Protocol

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HEADER_TIMEOUT = 10.0  # seconds for a request's line and headers, from its first byte
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection is kept open


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request's headers (see the module docstring)."""

    header_timeout = HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and data:
            self._arm()  # part of a request line or headers: the clock runs from its first byte
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop signal ends `serve()` instead of being raised again afterwards."""

    stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(sig: int, frame: FrameType | None) -> None:
            if self.stopped_by is None:
                self.stopped_by = sig
            self.handle_exit(sig, frame)  # a second Ctrl-C forces the exit, as in uvicorn

        original = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def netloc(host: str, port: int) -> str:
    """host:port as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port); ListenError says why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host!r}: the host name does not resolve ({exc.strerror})") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {netloc(host, port)}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    on_listen: Callable[[str], None] | None = None,
    sock: socket.socket | None = None,
    **config: Any,
) -> int:
    """Serve `app` until SIGTERM or Ctrl-C; returns the exit code (0 after SIGTERM, 130 after Ctrl-C).

    `on_listen(base)` is called once the server accepts connections, with its base URL
    ("http://127.0.0.1:8000", the port actually bound).
    `sock`: a socket already listening (from `bind`, taken early so a port in use is told at once).
    `config` goes to `uvicorn.Config` (log_level, server_header, ...).
    """
    sock = sock or bind(host, port)
    bound = sock.getsockname()[1]
    config = {"http": HeaderDeadlineProtocol, "timeout_keep_alive": KEEP_ALIVE_TIMEOUT, **config}
    server = _Server(uvicorn.Config(app, host=host, port=bound, **config))

    async def main() -> None:
        async def announce() -> None:
            while not server.started:
                await asyncio.sleep(0.05)
            if on_listen is not None:
                on_listen(f"http://{netloc(host, bound)}")

        watcher = asyncio.ensure_future(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    return 130 if server.stopped_by == signal.SIGINT else 0
