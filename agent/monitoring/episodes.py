"""Scores → episodes: the hysteresis of one rule on one stream, one segment at a time.

An episode **opens** when the rule's score is ≥ enter on `min_segments` consecutive segments (consecutive
indices, each starting at or after the end of the cooldown); it starts at the first of them. It stays
open while the score is ≥ exit, and **closes** at the first segment scoring < exit; it ends where the
last segment ≥ exit ended. After a close, no segment starting before (close segment's start +
cooldown seconds) counts towards a new episode. One alert per episode: opened, then updated at close.
When the source ends (a file read to its end), an open episode closes there: it ends at the end of
the stream's last segment (`close_at_source_end`), instead of staying open for segments that never come.

`--enter auto`: the rule's scores on this stream are not calibrated against a fixed number (zero-shot
scores of different texts sit at different levels), so the thresholds follow a rolling baseline of
the same rule on the same stream: over the scores of the segments that started in the last hour of
stream time before the current one, with σ̂ = 1.4826·MAD (the normal-consistent MAD),
enter = median + 3·σ̂ and (unless --exit is given) exit = median + σ̂. Until 30 such scores exist
the rule does not open episodes (warm-up).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tempo.memory.alerts import Rule

AUTO_WINDOW = 3600.0  # seconds of stream time the baseline looks back
AUTO_K_ENTER = 3.0  # enter = median + 3 σ̂
AUTO_K_EXIT = 1.0  # exit = median + 1 σ̂
AUTO_MIN_SAMPLES = 30  # warm-up: no episode before this many baseline scores
MAD_TO_SIGMA = 1.4826
FIXED_EXIT_GAP = 0.3  # exit = enter − 0.3 when only --enter is given


@dataclass(frozen=True)
class SegmentView:
    """What hysteresis needs of a segment. Seconds of stream time; wall clock Unix seconds (live)."""

    stream: str
    index: int
    start: float
    end: float
    wallclock_start: float | None = None

    @property
    def wallclock_end(self) -> float | None:
        return None if self.wallclock_start is None else self.wallclock_start + (self.end - self.start)


@dataclass
class RuleState:
    """Hysteresis state of one rule on one stream, committed with every segment (JSON)."""

    last: int = -1  # index of the last segment seen (consecutiveness)
    run: int = 0  # consecutive segments ≥ enter while closed
    run_first: int = -1
    run_start: float = 0.0
    run_wallclock: float | None = None
    run_peak: float = 0.0
    cooldown_until: float | None = None  # stream seconds
    alert: dict[str, Any] | None = None  # the open episode's alert

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RuleState:
        return cls(**json.loads(text))


def thresholds(rule: Rule, history: list[tuple[float, float]], now_start: float) -> tuple[float, float] | None:
    """(enter, exit) for the segment starting at `now_start`; None while an auto rule warms up.

    history: (segment start, score) of earlier segments, oldest first.
    """
    if rule.enter is not None:
        enter = rule.enter
        exit_ = rule.exit if rule.exit is not None else max(0.0, enter - FIXED_EXIT_GAP)
        return enter, min(exit_, enter)
    recent = np.array([s for t, s in history if now_start - AUTO_WINDOW <= t < now_start], dtype=np.float64)
    if recent.size < AUTO_MIN_SAMPLES:
        return None
    median = float(np.median(recent))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(recent - median)))
    enter = median + AUTO_K_ENTER * sigma
    exit_ = rule.exit if rule.exit is not None else median + AUTO_K_EXIT * sigma
    return enter, min(exit_, enter)


def alert_id(stream: str, rule_id: str, first_index: int) -> str:
    """Deterministic, so a resumed ingest re-derives the same id: `stream:rule:first segment`."""
    return f"{stream}:{rule_id}:{first_index}"


def step(
    rule: Rule,
    state: RuleState,
    segment: SegmentView,
    score: float,
    limits: tuple[float, float] | None,
    now: float,
) -> list[tuple[str, dict[str, Any]]]:
    """Advance `state` (in place) by one segment; returns the events: ("opened" | "closed", alert)."""
    events: list[tuple[str, dict[str, Any]]] = []
    if segment.index != state.last + 1:
        state.run = 0  # a gap in the indices (segments not monitored) breaks a run
    state.last = segment.index
    if state.alert is not None:
        alert = state.alert
        exit_ = alert["exit"]
        if score < exit_:
            alert["closed_at"] = round(now, 3)
            state.cooldown_until = segment.start + rule.cooldown
            state.alert = None
            events.append(("closed", alert))
        else:
            alert["segments"] += 1
            alert["last_segment"] = segment.index
            alert["end"] = segment.end
            alert["end_wallclock"] = segment.wallclock_end
            alert["peak"] = max(alert["peak"], score)
        return events
    cooled = state.cooldown_until is None or segment.start >= state.cooldown_until
    if limits is None or score < limits[0] or not cooled:
        state.run = 0
        return events
    if state.run == 0:
        state.run_first, state.run_start, state.run_wallclock, state.run_peak = (
            segment.index,
            segment.start,
            segment.wallclock_start,
            score,
        )
    state.run += 1
    state.run_peak = max(state.run_peak, score)
    if state.run >= rule.min_segments:
        state.alert = {
            "id": alert_id(segment.stream, rule.id, state.run_first),
            "stream": segment.stream,
            "rule": rule.id,
            "text": rule.text,
            "opened_at": round(now, 3),
            "closed_at": None,
            "start": state.run_start,
            "end": segment.end,
            "start_wallclock": state.run_wallclock,
            "end_wallclock": segment.wallclock_end,
            "first_segment": state.run_first,
            "last_segment": segment.index,
            "peak": state.run_peak,
            "segments": state.run,
            "enter": limits[0],
            "exit": limits[1],
            "verify": "pending" if rule.verify else "off",
            "verified": None,
            "explanation": None,
        }
        state.run = 0
        events.append(("opened", dict(state.alert)))
    return events


def close_at_source_end(rule: Rule | None, state: RuleState, now: float) -> dict[str, Any] | None:
    """The source ended with `state`'s episode open: close it (in place) where it stands, at the end of
    its last segment (the stream's last), and return the closed alert; None when none was open.
    `rule` None (removed meanwhile): no cooldown is kept."""
    alert = state.alert
    if alert is None:
        return None
    alert["closed_at"] = round(now, 3)
    alert["closed_reason"] = "source ended"
    state.cooldown_until = float(alert["end"]) + (rule.cooldown if rule is not None else 0.0)
    state.alert = None
    state.run = 0
    return alert
