"""An ingest with the stream's rules applied: what `tempo ingest`, `tempo serve`'s jobs, `tempo demo`
and `tempo eval` run.

    report = monitored_ingest(service, "camera.mp4", "cam1")

The service ingests (decode → generic pass → embed → commit); this adds, above it, the stream's
`RuleMonitor` (its rules scored in the same forward pass, alerts committed with their segment,
`--verify` asked through `Conversations.ask_once`), webhook delivery while the ingest runs (when
$TEMPO_WEBHOOK_SECRET is set), and, when a file source was read to its end (not a chunk of
`max_segments`, not a camera that dropped), the close of the episodes still open, at the last segment's end.
"""

from __future__ import annotations

from typing import Any

from tempo.agent.conversations import Conversations
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.agent.monitoring.verify import conversation_verifier
from tempo.agent.monitoring.webhooks import start_delivery_thread
from tempo.engine.ingest import IngestReport
from tempo.service import TempoService


def rule_monitor(service: TempoService, stream: str) -> RuleMonitor:
    """The rules of `stream` as an ingest (or a queue worker) applies them, verifying through the
    service's model and memory."""
    return RuleMonitor(service.alerts, stream, verifier=conversation_verifier(Conversations(service)))


def monitored_ingest(
    service: TempoService, source: str, stream: str, *, monitor: bool = True, **options: Any
) -> IngestReport:
    """`service.ingest(source, stream, **options)` with the stream's rules (rules added while it runs
    apply from the next batch on) and their webhooks delivered meanwhile; `monitor=False`: neither."""
    if not monitor:
        return service.ingest(source, stream, **options)
    delivery = start_delivery_thread(service.alerts)
    monitors: list[RuleMonitor] = []

    def make(name: str) -> RuleMonitor:
        monitors.append(rule_monitor(service, name))
        return monitors[-1]

    try:
        report = service.ingest(source, stream, monitors=make, **options)
        limit = options.get("max_segments")
        ended = not report.interrupted and (limit is None or report.committed < limit)  # not a chunk's end
        if ended and monitors and options.get("commit", True) and not service.stream(stream).source.get("live"):
            # A file read to its end: no segment will close its open episodes, so its end does.
            monitors[-1].source_ended()
        return report
    finally:
        if delivery is not None:
            delivery.stop()
