"""Questions about alerts ("what alerts fired last night?") answered from the alert log, with citations.

Alerts are facts the memory already holds, so such a question needs no model: the alerts of the
stream opened within the question's wall-clock scope are listed, each cited by its episode's stream
times and segments (the same citation shape as a model answer's). Scopes: "last night" (18:00 to
06:00 local time), "tonight", "yesterday", "today", "this morning/afternoon/evening", "in the last
N minutes/hours", "last hour/day/week"; without one, all alerts (the newest `MAX_LISTED`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from tempo.engine.timeexpr import DURATION_RE, parse_duration
from tempo.memory.alerts import AlertStore

MAX_LISTED = 20
_ALERT_WORD = r"\b(?:alerts?|alarms?)\b"
_ASKS = (
    rf"{_ALERT_WORD}[^?]*\b(?:fired|fire|raised|triggered|went\s+off|go\s+off|were\s+there|was\s+there|"
    r"happened|occurred|opened)\b"
    rf"|\b(?:which|what|any|list|show|how\s+many)\b[^?]*{_ALERT_WORD}"
)
ALERT_QUESTION_RE = re.compile(_ASKS, re.IGNORECASE)
_LAST_UNIT = re.compile(r"\b(?:last|past|previous)\s+(hour|day|week)\b", re.IGNORECASE)
_WITHIN = re.compile(rf"\b(?:in|within|during|over)?\s*(?:the\s+)?(?:last|past)\s+({DURATION_RE.pattern})", re.I)


def is_alert_question(question: str) -> bool:
    """Whether the question asks about the alerts themselves (not about the video)."""
    return ALERT_QUESTION_RE.search(question) is not None


def alert_time_scope(question: str, now: datetime) -> tuple[float | None, float | None, str]:
    """(since, until) in Unix seconds and the phrase, from the question's wall-clock words (local time)."""
    q = question.lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ts = datetime.timestamp
    if "last night" in q or "overnight" in q:
        end = midnight + timedelta(hours=6)
        if now < end:  # still that night
            end = now
        start = (end - timedelta(hours=12)).replace(hour=18, minute=0, second=0, microsecond=0)
        return ts(start), ts(end), "last night"
    if "tonight" in q:
        start = midnight + timedelta(hours=18) if now.hour >= 12 else midnight - timedelta(hours=6)
        return ts(start), ts(now), "tonight"
    if "yesterday" in q:
        return ts(midnight - timedelta(days=1)), ts(midnight), "yesterday"
    for part, (h0, h1) in {"this morning": (6, 12), "this afternoon": (12, 18), "this evening": (18, 24)}.items():
        if part in q:
            return ts(midnight + timedelta(hours=h0)), ts(min(now, midnight + timedelta(hours=h1))), part
    if "today" in q:
        return ts(midnight), ts(now), "today"
    within = _WITHIN.search(question)
    if within and (seconds := parse_duration(within.group(1))):
        return ts(now) - seconds, ts(now), within.group(0).strip()
    last = _LAST_UNIT.search(question)
    if last:
        seconds = {"hour": 3600.0, "day": 86400.0, "week": 604800.0}[last.group(1).lower()]
        return ts(now) - seconds, ts(now), last.group(0)
    return None, None, ""


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def answer_alert_question(
    alerts: AlertStore, stream: str, question: str, now: datetime | None = None
) -> dict[str, Any]:
    """{"answer", "citations", "alerts", "scope"} for an alert question about `stream`."""
    now = now or datetime.now()
    since, until, phrase = alert_time_scope(question, now)
    found = alerts.alerts(stream, since=since, until=until)
    listed = found[-MAX_LISTED:]
    where = f" {phrase}" if phrase else ""
    if not found:
        answer = f"No alerts fired on stream {stream!r}{where}."
    else:
        lines = [f"{len(found)} alert{'s' if len(found) != 1 else ''} fired on stream {stream!r}{where}:"]
        for a in listed:
            state = f"closed {_clock(a['closed_at'])}" if a.get("closed_at") is not None else "still open"
            verdict = {True: "; verified: yes", False: "; verified: no"}.get(a.get("verified"), "")
            reason = f" ({a['explanation']})" if verdict and a.get("explanation") else ""
            lines.append(
                f"- {a['text']!r} from {a['start']:.1f} s to {a['end']:.1f} s (opened {_clock(a['opened_at'])}, "
                f"{state}, peak relevance {a['peak']:.2f}{verdict}{reason}) [{a['id']}]"
            )
        answer = "\n".join(lines)
    citations = [
        {
            "start": round(float(a["start"]), 3),
            "end": round(float(a["end"]), 3),
            "segments": list(range(int(a["first_segment"]), int(a["last_segment"]) + 1)),
            "text": f"alert {a['id']}",
        }
        for a in listed
    ]
    scope = None if since is None else {"since": since, "until": until, "phrase": phrase}
    return {"answer": answer, "citations": citations, "alerts": listed, "scope": scope}
