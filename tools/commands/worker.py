"""`tempo worker`: a member of the work queue's consumer group (engine/worker.py).

Reads segment jobs in batches across every queued stream, runs the generic SVLM pass and the
embedder, commits each segment (idempotently, in any order) and acknowledges the job. Run as many as
the GPUs allow, on any machine that reaches the same Redis; SIGTERM or Ctrl-C stops after the batch
in flight (an unfinished job is claimed by another worker after TEMPO_QUEUE_CLAIM_IDLE seconds).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from tempo import inputs
from tempo.errors import TempoError
from tempo.inputs import arg_type
from tempo.tools.commands.options import add_asr_option, add_batch_size_option, add_memory_options, add_model_options

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="compress and commit queued segment jobs (scale-out)",
        description=(
            "Join the work queue's consumer group: read segment jobs pushed by `tempo ingest --queue` "
            "producers, in batches across all streams; compress (generic pass, scoring each stream's "
            "rules), embed, commit (with the rules' alerts) and acknowledge them. Jobs a dead worker "
            "left are claimed after TEMPO_QUEUE_CLAIM_IDLE seconds "
            "(default 30); a job failing TEMPO_QUEUE_MAX_FAILURES times (default 3) goes to its stream's "
            "dead-letter stream (`tempo queue dead STREAM`). Streams' retention policies (--max-age, "
            "--max-bytes, --compact-after, --cold-after of the producer) are enforced while it runs. "
            "Stops on SIGTERM or Ctrl-C."
        ),
    )
    add_batch_size_option(parser, "jobs")
    parser.add_argument(
        "--concurrency",
        type=arg_type(inputs.Concurrency, "count"),
        default=1,
        help="worker threads in this process, each its own consumer sharing the model, 1 to 64 (default 1)",
    )
    parser.add_argument(
        "--idle-exit",
        type=arg_type(inputs.AgeSeconds, "seconds"),
        default=None,
        help="exit after this many seconds without a job (default: run until stopped)",
    )
    parser.add_argument("--name", type=arg_type(inputs.StreamName, "name"), default=None,
                        help="consumer name in `tempo queue status` (default: HOST-PID)")
    add_asr_option(
        parser,
        "the Whisper checkpoint that transcribes the audio of jobs queued with `tempo ingest --queue --asr` "
        "(default: the one the producer named)",
    )
    parser.add_argument("--json", action="store_true", help="print the worker's totals as JSON when it stops")
    add_model_options(parser)
    add_memory_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tempo.agent.monitoring.ingest import rule_monitor
    from tempo.agent.monitoring.webhooks import start_delivery_thread
    from tempo.engine.worker import Worker
    from tempo.memory.jobqueue import JobQueue, QueueSettings
    from tempo.service import TempoService

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    store = service.store
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    worker = Worker(
        JobQueue.for_store(store, QueueSettings.from_env()),
        store,
        model=service.model,
        embedder=service.embedder,
        model_id=service.model_name,
        batch_size=args.batch_size or service.model.config.compress_batch_size,
        name=args.name,
        # Each stream's rules (`tempo rules`) are scored and their alerts committed with its segments.
        # Alerts of --verify rules are verified by the worker's model (`Conversations.ask_once`).
        monitors=lambda stream: rule_monitor(service, stream),
        asr=args.asr,
    )
    delivery = start_delivery_thread(service.alerts)  # alerts' webhooks, as `tempo ingest` delivers them
    # Streams' retention policies (age, size, compaction, cold tier) run beside the worker, as in
    # `tempo serve`, and once more before it exits: a queue-ingested stream has no `tempo ingest`
    # process of its own to enforce them. Several workers may run passes at once (each step is atomic).
    retention = service.start_retention()
    print(f"tempo worker {worker.name}: waiting for jobs", file=sys.stderr, flush=True)
    interrupted = False
    try:
        stats = worker.run(concurrency=args.concurrency, stop=stop, idle_exit=args.idle_exit)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        stats = worker.stats
    finally:
        retention.stop()
        if delivery is not None:
            delivery.stop()
    if not interrupted:
        try:
            retention.run_once()  # bounded (MAX_BATCHES_PER_PASS per stream)
        except TempoError as exc:  # the jobs are done and acknowledged: the next pass catches up
            log.warning("retention pass skipped: %s", exc)
    out = {"worker": worker.name, "segments": stats.segments, "dead_letters": stats.dead, "batches": stats.batches}
    print(json.dumps(out) if args.json else
          f"worker {worker.name}: {stats.segments} segments committed, {stats.dead} jobs dead-lettered")
    return 0
