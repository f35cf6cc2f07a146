"""Server-sent events of `tempo serve` (the streamed answer, the alert feed): one event per call."""

from __future__ import annotations

import json
from typing import Any


def sse(event: str, data: Any) -> bytes:
    """One event: its `event:` line and one compact JSON `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
