"""`RuleMonitor`: a stream's rules applied to each segment an ingest commits (engine.monitor.SegmentMonitor).

Per batch, on the model thread: `queries()` re-reads the rule book only when its version moved (one
GET), the model scores the batch for those texts in its generic pass, and `observe()` steps each
rule's hysteresis and returns, per segment, the script that commits the new states and alert events
in the same transaction as the segment (the events into the stream's outbox); once the writer has
committed them, `committed()` relays them to the alert log (`AlertStore.relay`; a worker's landing
calls `landed()`). The state in this process is the one committed (the monitor loads it at start,
relaying what a committer killed before its relay left in the outbox), so a resumed ingest continues
every rule exactly where it stood.
`--verify` questions run on the model thread between batches (`idle()`), after the episode's
segments are committed; ones owed from an earlier run are asked first.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tempo.agent.monitoring.episodes import RuleState, SegmentView, close_at_source_end, step, thresholds
from tempo.engine.monitor import SegmentMonitor
from tempo.memory.alerts import AlertStore, Rule, RuleCommit
from tempo.memory.errors import MemoryUnavailableError
from tempo.memory.records import SegmentRecord
from tempo.streaming.segment import Segment

log = logging.getLogger(__name__)

# (alert, rule) → (verified: True/False, None when the answer is neither; one-line reason)
Verifier = Callable[[dict[str, Any], Rule], tuple[bool | None, str]]

_VERIFICATION_FIELDS = ("verify", "verified", "explanation")


class RuleMonitor(SegmentMonitor):
    """The rules of one stream during one ingest run. Not thread-safe except `committed()`."""

    def __init__(
        self,
        alerts: AlertStore,
        stream: str,
        *,
        verifier: Verifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alerts = alerts
        self.stream = stream
        self.verifier = verifier
        self.clock = clock
        self._version = -1
        self._rules: list[Rule] = []
        self.batch_rules: list[Rule] = []  # the rules of the last `queries()`
        at, raw = alerts.load_state(stream)
        self.applied = at  # last segment index whose rule state is committed
        self.states: dict[str, RuleState] = {k: RuleState.from_json(v) for k, v in raw.items()}
        self._history: dict[str, list[tuple[float, float]]] = {}
        self._to_verify_at: dict[int, list[str]] = {}  # segment index → alert ids opened there (--verify)
        self._to_relay: set[int] = set()  # indices of segments whose commit puts events in the outbox
        self._verify_queue: queue.Queue[str] = queue.Queue()
        for alert_id in alerts.pending_verifications(stream):
            self._verify_queue.put(alert_id)

    # ---- rule set ----------------------------------------------------------------------------------
    def queries(self) -> list[str]:
        """The texts to score on the next batch: the stream's rules as of now, in id order."""
        version = self.alerts.rules_version()
        if version != self._version:
            self._rules = self.alerts.rules(self.stream)
            self._version = version
        self.batch_rules = list(self._rules)
        return [r.text for r in self.batch_rules]

    # ---- per batch ---------------------------------------------------------------------------------
    def observe(
        self, batch: Sequence[Segment], scores: np.ndarray, *, through: bool = False
    ) -> list[Callable[[Any], None] | None]:
        """Step every rule over `batch` (scores (n, R) for the rules of the last `queries()`); returns,
        per segment, what to queue after its put (None when nothing changes; `through`: see
        `RuleCommit`)."""
        rules = self.batch_rules
        live = {r.id for r in self._rules}  # the rule book: a rule without scores here is not removed
        removed = [rid for rid in self.states if rid not in live]
        out: list[Callable[[Any], None] | None] = []
        for row, segment in enumerate(batch):
            if segment.index <= self.applied:
                out.append(None)  # already committed with its rule state (cannot happen after a resume)
                continue
            now = self.clock()
            commit = RuleCommit(stream=self.stream, index=segment.index, through=through)
            view = SegmentView(
                self.stream, segment.index, float(segment.start), float(segment.end), segment.wallclock_start
            )
            for rule_id in removed:  # a removed rule's open episode closes here; its state goes
                state = self.states.pop(rule_id)
                if state.alert is not None:
                    alert = dict(state.alert, closed_at=round(now, 3), closed_reason="rule removed")
                    commit.events.append(("closed", _without_verification(alert), None))
                commit.states[rule_id] = None
            removed = []
            for j, rule in enumerate(rules):
                score = float(scores[row, j])
                state = self.states.setdefault(rule.id, RuleState())
                history = self._rule_history(rule)
                limits = thresholds(rule, history, view.start)
                for kind, alert in step(rule, state, view, score, limits, now):
                    if kind == "opened" and rule.verify:
                        self._to_verify_at.setdefault(segment.index, []).append(alert["id"])
                    fields = alert if kind == "opened" else _without_verification(alert)
                    commit.events.append((kind, fields, rule.webhook))
                commit.states[rule.id] = state.to_json()
                if rule.enter is None:
                    history.append((view.start, score))
                    commit.history[rule.id] = f"{view.start!r} {score!r}"
            self.applied = segment.index
            if commit.events:
                self._to_relay.add(segment.index)
            out.append(self.alerts.commit_rules(commit) if commit.states else None)
        return out

    def source_ended(self) -> int:
        """The source was read to its end: close the open episodes at the last segment's end, in one
        commit with their rule states (see `AlertStore.close_at_end`). Returns how many closed."""
        at, raw = self.alerts.load_state(self.stream)
        if at < 0:
            return 0
        rules = {r.id: r for r in self.alerts.rules(self.stream)}
        now = self.clock()
        commit = RuleCommit(stream=self.stream, index=at)
        old: dict[str, str] = {}
        for rule_id, text in raw.items():
            state = RuleState.from_json(text)
            rule = rules.get(rule_id)
            alert = close_at_source_end(rule, state, now)
            if alert is None:
                continue
            old[rule_id] = text
            commit.states[rule_id] = state.to_json()
            commit.events.append(("closed", _without_verification(alert), rule.webhook if rule else None))
        if not commit.events or not self.alerts.close_at_end(commit, old):
            return 0
        self.states.update({k: RuleState.from_json(v) for k, v in commit.states.items() if v})
        return len(commit.events)

    # ---- the work queue ------------------------------------------------------------------------------
    def rule_ids(self) -> list[str]:
        """The ids of the rules of the last `queries()`, in the same order as its texts."""
        return [r.id for r in self.batch_rules]

    def observe_scored(
        self, index: int, start: float, end: float, wallclock_start: float | None, scores: dict[str, float]
    ) -> Callable[[Any], None] | None:
        """`observe` of one segment a work-queue landing commits (engine/worker.py): `scores` are rule
        id → relevance, as its worker scored them; the rules of the last `queries()` without a score
        (added after the job was computed) skip this segment. The script returned applies "through"."""
        book = self.batch_rules
        self.batch_rules = [r for r in book if r.id in scores]
        try:
            segment = SegmentView(self.stream, index, start, end, wallclock_start)
            row = np.array([[scores[r.id] for r in self.batch_rules]], dtype=np.float32)  # (1, R)
            then = self.observe([segment], row, through=True)[0]  # type: ignore[list-item]
        finally:
            self.batch_rules = book
        return then

    def _rule_history(self, rule: Rule) -> list[tuple[float, float]]:
        if rule.enter is not None:
            return []
        if rule.id not in self._history:
            self._history[rule.id] = self.alerts.history(self.stream, rule.id)
        history = self._history[rule.id]
        if len(history) > 2 * 4096:
            del history[: len(history) - 4096]
        return history

    def landed(self) -> None:
        """The work-queue landing that queued this monitor's scripts committed: relay their events."""
        if self._to_relay:
            self._to_relay.clear()
            self._relay()

    def _relay(self) -> None:
        try:
            self.alerts.relay(self.stream)
        except MemoryUnavailableError as exc:  # committed all the same: the next reader or commit relays them
            log.warning("alert events of stream %r wait in its outbox: %s", self.stream, exc)

    def committed(self, records: Sequence[SegmentRecord]) -> None:
        """The writer committed `records`: their alert events are relayed to the alert log, then their
        --verify questions may be asked (any thread)."""
        relay = [r.index for r in records if r.index in self._to_relay]
        if relay:
            self._to_relay.difference_update(relay)
            self._relay()
        for record in records:
            for alert_id in self._to_verify_at.pop(record.index, []):
                self._verify_queue.put(alert_id)

    def idle(self) -> None:
        """Ask the owed --verify questions (model thread, between batches)."""
        if self.verifier is None:
            return
        while True:
            try:
                alert_id = self._verify_queue.get_nowait()
            except queue.Empty:
                return
            self.verify(alert_id)

    def verify(self, alert_id: str) -> None:
        """Ask the verifier about one alert and record its answer (once per alert)."""
        assert self.verifier is not None
        alert = self.alerts.alert(alert_id)
        try:
            rule: Rule | None = self.alerts.get_rule(alert["rule"])
        except Exception:  # the rule was removed meanwhile: verify with the text the alert kept
            rule = None
        rule = rule or Rule(id=alert["rule"], stream=alert["stream"], text=alert["text"], verify=True)
        try:
            verified, reason = self.verifier(alert, rule)
        except Exception as exc:  # kept, marked unverified with the reason (a user can still act on it)
            log.warning("verifying alert %s failed: %s", alert_id, exc)
            verified, reason = None, f"verification failed: {exc}"
        self.alerts.record_verification(alert_id, verified, reason, rule.webhook)


def _without_verification(alert: dict[str, Any]) -> dict[str, Any]:
    """An update must not overwrite what the verifier wrote on the alert meanwhile."""
    return {k: v for k, v in alert.items() if k not in _VERIFICATION_FIELDS}
