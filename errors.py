"""Exceptions a user can hit, and the one rule that keeps credentials out of what is shown to a user.

Each exception carries one sentence the CLI prints as-is and the API returns as a 4xx. URLs may
carry secrets (`redis://:password@host`, `rtsp://user:pass@camera`, `https://TOKEN@host/live.m3u8`,
`?token=...`): whatever shows a URL or a source passes it through `redact_url`, and the boundaries
(CLI, MCP, LangChain) pass every error message through `redact_secrets` as a last line of defence.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "***"

# Query parameters that carry a credential (compared in lower case): tokens, keys, passwords, and the
# signatures of pre-signed object-store URLs.
SECRET_QUERY_KEYS = frozenset(
    {
        "password", "passwd", "pass", "pwd", "passphrase", "secret", "client_secret", "token", "access_token",
        "refresh_token", "id_token", "auth", "auth_token", "authorization", "bearer", "jwt", "key", "api_key",
        "apikey", "x_api_key", "session", "sessionid", "session_id", "sid", "streamkey", "stream_key", "sig",
        "signature", "x_amz_signature", "x_amz_credential", "x_amz_security_token", "x_goog_signature",
        "x_goog_credential", "credential",
    }
)
# RTMP puts its stream key in the path: rtmp://host/app/KEY (everything after the application name).
PATH_KEY_SCHEMES = frozenset({"rtmp", "rtmps", "rtmpe", "rtmpt", "rtmpte", "rtmpts"})


def is_secret_key(name: str) -> bool:
    """Whether a query or fragment parameter name carries a credential (case, '-' and '_' ignored)."""
    return name.strip().lower().replace("-", "_") in SECRET_QUERY_KEYS


# scheme://userinfo@ inside free text; userinfo stops at whitespace, quotes and the path.
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>`]+""")


class TempoError(Exception):
    """Base class: a problem with the user's input or environment, explained in one sentence.

    Every subclass derives from exactly one of the categories below, which say what kind of problem it
    is; the HTTP API answers by category (tempo.tools.server_problems.STATUS_BY_CATEGORY), never by
    listing classes, and tests/test_errors.py holds every TempoError in the package to one category.
    """

    exit_code: int = 2


# ----- the categories -------------------------------------------------------------------------------


class InvalidInputError(TempoError):
    """An argument (CLI flag, tool argument, API field, a source or file it names) outside what Tempo
    accepts or can use."""


class NotFoundError(TempoError):
    """Something named by the user (a stream, thread, job, rule, alert, segment) that does not exist."""


class ConflictError(TempoError):
    """A request that clashes with the current state (the stream is being ingested, the id is taken)."""


class UnavailableError(TempoError):
    """Tempo cannot do it now, whatever the request: Redis down, weights missing, cold tier unreadable."""


class TooManyRequestsError(TempoError):
    """More work is waiting than is accepted; `retry_after` says in how many seconds to try again."""

    retry_after: int = 1


class TimedOutError(TempoError):
    """Work that did not finish within its deadline."""


# ----- errors shared by several layers --------------------------------------------------------------


class DeviceUnavailableError(InvalidInputError):
    """A torch device that is not a device name, or that this machine does not have."""


class InvalidTimeScopeError(InvalidInputError):
    """A time scope given explicitly (tool argument, API field, CLI option) that cannot be used."""


class QuestionTooLongError(InvalidInputError):
    """A question whose tokens leave no room for video in the global LLM's context."""

    def __init__(self, context_limit: int) -> None:
        super().__init__(
            f"the question is too long: it leaves no room for video in the model's {context_limit}-token context"
        )
        self.context_limit = context_limit


def redact_url(url: str) -> str:
    """`url` with the password (or a lone user token) of its userinfo and secret query values masked.

    `redis://:pw@h:6379/0` -> `redis://:***@h:6379/0`, `rtsp://admin:pw@cam/1` -> `rtsp://admin:***@cam/1`,
    `https://TOKEN@host/x` -> `https://***@host/x`, `...?token=abc` -> `...?token=***`, a `#fragment`
    -> `#***`, `rtmp://host/app/STREAMKEY` -> `rtmp://host/app/***`. Anything without
    `scheme://` (a file path, a device, `-`) comes back unchanged.
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # unparsable (e.g. a bad IPv6 literal): mask everything between :// and @
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{REDACTED}@{rest.rpartition('@')[2]}" if "@" in rest else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        # user:password keeps the user (useful to debug); a lone userinfo may itself be the token.
        netloc = f"{user}:{REDACTED}@{hostport}" if colon else f"{REDACTED}@{hostport}"
    query = _redact_pairs(parts.query)
    # A fragment never reaches the server; where one is written it is a client-side secret (#token=...).
    fragment = REDACTED if parts.fragment else ""
    path = parts.path
    if parts.scheme.lower() in PATH_KEY_SCHEMES:
        app, slash, key = path.lstrip("/").partition("/")
        if slash and key:
            path = f"/{app}/{REDACTED}"
    if (netloc, query, fragment, path) == (parts.netloc, parts.query, parts.fragment, parts.path):
        return url
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _redact_pairs(text: str) -> str:
    """A query `a=1&token=x` → `a=1&token=***`; one without a secret parameter comes back unchanged."""
    if "=" not in text:
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(is_secret_key(k) for k, _ in pairs):
        return text
    return "&".join(
        f"{quote(k, safe='')}={REDACTED if is_secret_key(k) else quote(v, safe='/:')}" for k, v in pairs
    )


def redact_secrets(text: str) -> str:
    """`text` with every URL in it passed through `redact_url` (error messages, logs)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
