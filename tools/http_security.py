"""What every Tempo HTTP server shares (`tempo serve` and `tempo mcp --http`): where the bearer token
comes from, the token check, and the Host/Origin check against DNS rebinding (their Prometheus metrics
are tempo.tools.http_metrics).

    token = resolve_token(flag=args.token, token_file=args.token_file)   # env / file / flag (warned)
    app = guard(app, host=args.host, token=token, open_paths=("/health",))

Rules (issue 8 §2–3):
- the token comes from `--token-file`, else $TEMPO_MCP_TOKEN, else `--token` (visible in `ps`: warned);
  a blank token or one under 16 characters is refused;
- with a token, every route but `open_paths` needs `Authorization: Bearer <token>` (the scheme in any
  case, the token compared in constant time);
- without a token (loopback only), every route checks that Host names a loopback address and that an
  Origin, when sent, is a loopback origin (or one given with `--cors-origin`): addresses are parsed
  with `ipaddress`, so 127.0.0.2 and 0:0:0:0:0:0:0:1 count as loopback and evil.example does not.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from tempo.settings import environment
from tempo.tools.commands.mcp import TOKEN_ENV
from tempo.tools.errors import HTTPConfigError

MIN_TOKEN_CHARS = 16


# ----- token ------------------------------------------------------------------------------------------


def check_token(token: str, where: str) -> str:
    if not token.strip():
        raise HTTPConfigError(f"the bearer token from {where} is blank")
    if len(token) < MIN_TOKEN_CHARS:
        raise HTTPConfigError(
            f"the bearer token from {where} is shorter than {MIN_TOKEN_CHARS} characters; use a long random one"
        )
    return token


def resolve_token(
    *, flag: str | None = None, token_file: str | None = None, environ: dict[str, str] | None = None
) -> str | None:
    """The server's bearer token: `--token-file`, else $TEMPO_MCP_TOKEN, else `--token` (with a warning,
    since command lines are visible to every user in `ps`). None when none is given."""
    env_token = environment().mcp_token if environ is None else environ.get(TOKEN_ENV)
    if token_file is not None:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HTTPConfigError(f"cannot read the token file {token_file}: {exc.__class__.__name__}") from None
        return check_token(text.strip("\r\n"), f"the token file {token_file}")
    if env_token is not None:
        return check_token(env_token, f"${TOKEN_ENV}")
    if flag is not None:
        print(
            f"tempo: warning: --token is visible to other users in `ps`; prefer ${TOKEN_ENV} or --token-file",
            file=sys.stderr,
            flush=True,
        )
        return check_token(flag, "--token")
    return None


def require_token_off_loopback(host: str, token: str | None, what: str) -> None:
    if not is_loopback(host) and not token:
        raise HTTPConfigError(
            f"serving {what} on {host} (not loopback) needs a bearer token: set ${TOKEN_ENV} or pass --token-file"
        )


# ----- addresses --------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` (a bind address or a Host header's name, no port) is a loopback address."""
    host = host.strip().lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a Host header value ('[::1]:8000' → '::1', '127.0.0.2:80' → '127.0.0.2')."""
    header = header.strip()
    if header.startswith("["):
        inside, bracket, after = header[1:].partition("]")
        # Only ':port' may follow the bracket: '[::1]evil.com' is not a loopback name.
        if bracket and (not after or (after.startswith(":") and after[1:].isdigit())):
            return inside
        return header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header  # a bare IPv6 address or a name without a port


def origin_is_loopback(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname is not None and is_loopback(parts.hostname)


# ----- the middleware ---------------------------------------------------------------------------------


def _send_problem(status: int, title: str, detail: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> Any:
    """An ASGI sender of an RFC 9457 problem document."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()

    async def send_it(send: Any) -> None:
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra_headers]})
        await send({"type": "http.response.body", "body": body})

    return send_it


def bearer_token(authorization: bytes) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` value (scheme in any case), else None."""
    scheme, _, value = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return value.strip() or None


class HTTPGuard:
    """ASGI middleware in front of a whole server: bearer token when one is set, else Host/Origin checks.

    `open_paths` (exact paths) and `open_prefixes` need no token (health probes, the console's static
    files, which hold no data); the Host/Origin check applies to every route.
    """

    def __init__(
        self,
        app: Any,
        *,
        token: str | None,
        open_paths: tuple[str, ...] = ("/health",),
        open_prefixes: tuple[str, ...] = (),
        allowed_origins: tuple[str, ...] = (),
        cookie_name: str | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}
        self.cookie_name = cookie_name.encode() if cookie_name else None

    def _token_of(self, headers: dict[bytes, bytes]) -> bytes | None:
        given = bearer_token(headers.get(b"authorization", b""))
        if given is None and self.cookie_name is not None:
            # The console's <video> cannot send headers: it sends the token as a SameSite=Strict cookie.
            for part in headers.get(b"cookie", b"").split(b";"):
                name, _, value = part.strip().partition(b"=")
                if name == self.cookie_name and value:
                    # Browsers' document.cookie writers percent-encode (base64's + / =): compare decoded.
                    given = unquote_to_bytes(value)
        return given

    def _origin_allowed(self, origin: str, host: str) -> bool:
        """--cors-origin ones, the page's own origin (the console), and without a token loopback pages."""
        if origin.rstrip("/") in self.allowed_origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme in ("http", "https") and parts.netloc and parts.netloc == host:
            return True
        return self.token is None and origin_is_loopback(origin)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        path = scope.get("path", "")
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        if origin and not self._origin_allowed(origin, host):
            await _send_problem(403, "Forbidden", f"requests from the origin {origin[:200]!r} are not allowed")(send)
            return
        # A CORS preflight carries no credentials; it is answered (by the CORS middleware) only for
        # an origin given with --cors-origin, and tells nothing but the CORS policy.
        preflight = (
            scope.get("method") == "OPTIONS"
            and origin.rstrip("/") in self.allowed_origins
            and b"access-control-request-method" in headers
        )
        if self.token is None:
            if not is_loopback(host_name(host)):
                await _send_problem(
                    421, "Misdirected Request", f"the Host {host[:200]!r} is not a loopback address of this server"
                )(send)
                return
        elif path not in self.open_paths and not path.startswith(self.open_prefixes) and not preflight:
            given = self._token_of(headers)
            if given is None or not hmac.compare_digest(given, self.token):
                await _send_problem(
                    401,
                    "Unauthorized",
                    "a valid bearer token is required (Authorization: Bearer <token>)",
                    [(b"www-authenticate", b'Bearer realm="tempo"')],
                )(send)
                return
        await self.app(scope, receive, send)
