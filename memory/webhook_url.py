"""A rule's webhook URL, checked when the rule is made: the network policy of tempo.streaming.netguard."""

from __future__ import annotations

from urllib.parse import urlsplit

from tempo import settings
from tempo.errors import redact_url
from tempo.memory.errors import InvalidRuleError
from tempo.streaming import netguard
from tempo.streaming.errors import DestinationRefusedError


def check_webhook_url(url: str, *, deny_private: bool | None = None) -> None:
    """Refuse a webhook URL the delivery policy would refuse (tempo.streaming.netguard): not http(s), a
    cloud metadata or link-local destination, and with `deny_private` (default: the environment's
    setting) a loopback or private one."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise InvalidRuleError(f"--webhook must be an http:// or https:// URL, not {redact_url(url)!r}")
    deny = settings.deny_private_networks() if deny_private is None else deny_private
    try:
        netguard.check_webhook_url(url, deny_private=deny)
    except DestinationRefusedError as exc:
        raise InvalidRuleError(f"--webhook refused: {exc}") from None
