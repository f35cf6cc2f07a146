"""One webhook POST, made so that a hostile receiver or URL cannot do harm (issue 26).

- **Where**: the receiver's name is resolved and every address checked against the network policy
  (tempo.streaming.netguard) *at delivery time*, and the connection goes to a checked address (the Host
  header and TLS server name stay the URL's), so a name that changes its answer after the rule was made
  cannot redirect the POST to the metadata service or, with `deny_private`, into the private network.
- **No redirects**: a 3xx is a failed delivery with its reason (following it would POST elsewhere,
  or turn the POST into a GET and record an event as delivered that nobody received).
- **A total deadline**: the whole exchange (connect, send, the answer's status line and headers) must
  end within `deadline` seconds; a receiver trickling one byte at a time is cut off then, instead of
  the per-read socket timeout restarting with every byte.
- **Credentials** in the URL (`https://user:pass@host/`) are sent as HTTP Basic authorization, never
  as part of the host name.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
from urllib.parse import unquote, urlsplit

from tempo.errors import redact_url
from tempo.streaming import netguard

MAX_ANSWER_BYTES = 64 * 1024  # of the receiver's answer body read (and dropped) before closing


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to `address` that speaks to the server as `host`."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to `address`, with the certificate checked for `host` (SNI `host`)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def _authorization(username: str | None, password: str | None) -> str | None:
    if username is None and password is None:
        return None
    pair = f"{unquote(username or '')}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline: float,
    deny_private: bool,
    tls: ssl.SSLContext | None = None,
) -> str | None:
    """POST `body` to `url`; None after a 2xx answer, else what went wrong in one line (no secrets)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        addresses = netguard.resolve_checked(
            parts.hostname, port, deny_private=deny_private, what=repr(redact_url(url))
        )
    except netguard.DestinationRefusedError as exc:
        return f"refused: {exc}"
    headers = dict(headers)
    auth = _authorization(parts.username, parts.password)
    if auth is not None:
        headers["Authorization"] = auth
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    error = "no address to connect to"
    for address in addresses:
        error = _post_to(str(address), parts.hostname, port, parts.scheme, target, body, headers, deadline, tls)
        if error is None or not error.startswith("cannot connect"):
            return error
    return error


def _post_to(
    address: str,
    host: str,
    port: int,
    scheme: str,
    target: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    tls: ssl.SSLContext | None,
) -> str | None:
    if scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPS(
            host, port, address=address, timeout=deadline, context=tls or ssl.create_default_context()
        )
    else:
        conn = _PinnedHTTP(host, port, address=address, timeout=deadline)
    expired = threading.Event()

    def cut_off() -> None:  # the deadline passed: unblock whatever read or write is waiting
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline, cut_off)
    timer.daemon = True
    timer.start()
    try:
        try:
            conn.connect()
        except OSError as exc:
            if expired.is_set():
                return f"no answer within {deadline:g} s"
            return f"cannot connect: {exc.strerror or type(exc).__name__}"
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        status = response.status
        response.read(MAX_ANSWER_BYTES)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            return f"no answer within {deadline:g} s"
        return f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
    finally:
        timer.cancel()
        conn.close()
    if expired.is_set():
        return f"no answer within {deadline:g} s"
    if 300 <= status < 400:
        return f"HTTP {status}: redirects are not followed"
    return None if 200 <= status < 300 else f"HTTP {status}"
