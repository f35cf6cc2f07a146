"""A loopback HTTP proxy that holds FFmpeg's HTTP(S) connections to the network policy (netguard).

FFmpeg connects wherever a playlist points: an HLS playlist from an accepted host may name variant
playlists, segments and keys on any other host (a cloud metadata address, a private network), and a
name may resolve differently for FFmpeg than it did for the check made before the open. So an
http(s) source is opened with FFmpeg's `http_proxy` option set to this proxy; FFmpeg's HLS demuxer
passes that option on to every nested open. Every connection is checked here, then made to the very
address that was checked (no second lookup):

- `GET http://host:port/path` (plain http, absolute form): checked, forwarded in origin form with
  `Connection: close`, the response relayed until the server closes;
- `CONNECT host:port` (https: FFmpeg tunnels its TLS through the proxy, so certificates are still
  checked end to end): checked, then bytes relayed both ways;
- refused: 403 with the one-sentence reason, logged once per destination; nothing is fetched. FFmpeg
  then fails the open, or skips that segment as it skips a missing one.

One proxy per process and policy, started on first use on 127.0.0.1 (an ephemeral port), in daemon
threads. FFmpeg reaches hosts listed in the `no_proxy` environment variable directly; with the strict
policy (TEMPO_DENY_PRIVATE_NETWORKS) that is refused at open (tempo.streaming.sources).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import socketserver
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from tempo.errors import redact_url
from tempo.streaming import netguard

log = logging.getLogger("tempo.streaming")

HEAD_LIMIT = 64 * 1024  # request line and headers
HEAD_DEADLINE_S = 10.0  # FFmpeg sends its request at once
CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 60.0  # a relay with no byte either way for this long is closed
CHUNK = 64 * 1024


class _Refused(Exception):
    """A destination the policy refuses (control flow inside the handler; answered with 403)."""


class GuardProxy(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The proxy for one policy (`deny_private`: private and loopback addresses refused too; cloud
    metadata addresses always are). `url` is what FFmpeg's `http_proxy` option gets."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, deny_private: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.deny_private = deny_private
        self.refusals: deque[tuple[float, str]] = deque(maxlen=64)  # (monotonic time, sentence)
        self.failures: deque[tuple[float, str]] = deque(maxlen=64)  # (monotonic time, connect error)
        self._logged: set[str] = set()
        self._thread = threading.Thread(target=self.serve_forever, name="tempo-netproxy", daemon=True)
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("guard proxy: a relay ended with an error", exc_info=True)  # the client sees it as a broken read

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def refused_since(self, since: float) -> str | None:
        """The latest refusal at or after `since` (time.monotonic()), or None."""
        return _latest(self.refusals, since)

    def failed_since(self, since: float) -> str | None:
        """The latest connection error ("connection refused") at or after `since`, or None."""
        return _latest(self.failures, since)

    def check(self, url: str, host: str, port: int) -> list[Any]:
        """The addresses to connect to for `url`, or _Refused with the one-sentence reason."""
        what = repr(redact_url(url))
        try:
            return netguard.resolve_checked(host, port, deny_private=self.deny_private, what=what)
        except netguard.DestinationRefusedError as exc:
            sentence = str(exc)
            self.refusals.append((time.monotonic(), sentence))
            if sentence not in self._logged:
                self._logged.add(sentence)
                log.warning("refused a connection for a video source: %s", sentence)
            raise _Refused(sentence) from None


class _Handler(socketserver.BaseRequestHandler):
    server: GuardProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(HEAD_DEADLINE_S)
        try:
            head, rest = _read_head(client)
            method, target, headers = _parse_head(head)
            if method == "CONNECT":
                host, port = _authority(target, default_port=None)
                url = f"https://{target}"
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    _answer(client, 400, "the proxy takes absolute http:// URLs and CONNECT only")
                    return
                host, port = parts.hostname, parts.port or 80
                url = target
            addresses = self.server.check(url, host, port)
        except _Refused as exc:
            _answer(client, 403, str(exc))
            return
        except (OSError, ValueError) as exc:
            _answer(client, 400, str(exc) or type(exc).__name__)
            return
        try:
            upstream = _connect(addresses, port)
        except OSError as exc:  # FFmpeg would only say "5XX": the open's error says this instead
            reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
            self.server.failures.append((time.monotonic(), reason))
            _answer(client, 502, reason)
            return
        with upstream:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(_origin_request(method, target, headers) + rest)
            _relay(client, upstream)


def _latest(events: deque[tuple[float, str]], since: float) -> str | None:
    latest = [text for at, text in list(events) if at >= since]
    return latest[-1] if latest else None


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(request line and headers, bytes read past them), within HEAD_LIMIT."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("the request ended before its headers")
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise ValueError("the request's headers are too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("a malformed request header")
        headers.append((name.strip(), value.strip()))
    return method.upper(), target, headers


def _authority(target: str, *, default_port: int | None) -> tuple[str, int]:
    parts = urlsplit(f"//{target}")
    port = parts.port or default_port
    if not parts.hostname or port is None:
        raise ValueError(f"CONNECT needs host:port, not {target!r}")
    return parts.hostname, port


def _origin_request(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """The request in origin form for the server: its own headers less the hop-by-hop ones, and
    `Connection: close` (one request per relayed connection)."""
    parts = urlsplit(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    hop = {"connection", "proxy-connection", "proxy-authorization", "keep-alive"}
    kept = [f"{name}: {value}" for name, value in headers if name.lower() not in hop]
    return "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode("latin-1")


def _connect(addresses: list[Any], port: int) -> socket.socket:
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((str(address), port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or nothing moves for IDLE_TIMEOUT_S."""
    a.setblocking(False)
    b.setblocking(False)
    peer = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        while True:
            ready = selector.select(IDLE_TIMEOUT_S)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    _send_all(peer[source], data)
                except OSError:
                    return


def _send_all(sock: socket.socket, data: bytes) -> None:
    sock.settimeout(IDLE_TIMEOUT_S)
    try:
        sock.sendall(data)
    finally:
        sock.setblocking(False)


def _answer(sock: socket.socket, status: int, sentence: str) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = sentence.encode("utf-8", "replace")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(OSError):
        sock.sendall(head.encode("latin-1") + body)


_proxies: dict[bool, GuardProxy] = {}
_lock = threading.Lock()


def guard_proxy(*, deny_private: bool) -> GuardProxy:
    """The process's proxy for this policy, started on first use."""
    with _lock:
        proxy = _proxies.get(deny_private)
        if proxy is None:
            proxy = _proxies[deny_private] = GuardProxy(deny_private=deny_private)
        return proxy
