"""The work queue's worker: a member of the consumer group that runs the model on queued jobs (DESIGN §3).

`Worker` (`tempo worker`) reads a batch of jobs across all streams (memory/jobqueue.py), runs
`encode_batch` on it (the generic SVLM pass with each stream's monitoring rules in the same forward,
and the embedder), commits the segments with the store's out-of-order landing (idempotent, so a job
done twice is stored once), then acknowledges the jobs. Failing jobs are retried, claimed from dead
workers, and dead-lettered after `QueueSettings.max_failures` attempts, their index recorded as a gap
(the module doc of memory/jobqueue.py says how).

A job's cues (subtitles its producer found) and the speech of its audio (transcribed here, with
engine/speech.py, when the producer was asked for `--asr`) commit in the segment's own metadata, so
the keyword index sees them with the segment.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import redis
from tempo.engine.encode import encode_batch
from tempo.engine.ingest import stream_settings
from tempo.engine.monitor import SegmentMonitor
from tempo.engine.open_recall import stored_anchor
from tempo.engine.result import family_of
from tempo.engine.speech import transcribe_audio
from tempo.engine.worker_faults import REDIS_DOWN, RedisOutage, land_orphan_gaps, record_gap
from tempo.errors import TempoError
from tempo.memory.alerts import AlertStore
from tempo.memory.errors import JobError
from tempo.memory.jobqueue import Job, JobQueue
from tempo.memory.records import SegmentRecord
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import CommitResult, CommitStatus
from tempo.models.config import GENERIC_QUERY
from tempo.streaming import Segment
from tempo.streaming.subtitles import Cue

if TYPE_CHECKING:  # the model stack is loaded by whoever builds the model
    from tempo.models.embedder import SegmentEmbedder
    from tempo.models.family import ModelFamily

log = logging.getLogger(__name__)


def default_consumer_name() -> str:
    """host-pid: unique per worker process, readable in `tempo queue status`."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerStats:
    segments: int = 0  # committed (or found already committed) by this worker
    dead: int = 0
    batches: int = 0


# What a worker computed for one job: memory tokens (M, D), embedding (E,), rule id → score (None: no rules).
Computed = tuple[Segment, np.ndarray, np.ndarray, dict[str, float] | None]


class Worker:
    """One consumer of the group: read a batch across streams → generic pass (+ the streams' rules) +
    embedder → commit → ack.

    `concurrency` threads run this loop, each its own consumer (`{name}-{k}`), sharing the model.
    With `monitors` (stream → its rules), each stream's rules are scored in the generic pass, and the
    landing that commits a segment steps them and commits their state and alert events (into the
    stream's outbox, relayed to the alert log right after) in the same MULTI/EXEC
    (`_land_with_rules`), as a single-process ingest does; a job that lands before its predecessors
    stages its scores (`AlertStore.k_staged_scores`) for the landing that commits it.
    """

    def __init__(
        self,
        queue: JobQueue,
        store: RedisMemoryStore,
        *,
        model: ModelFamily,
        embedder: SegmentEmbedder,
        model_id: str,
        batch_size: int = 8,
        name: str | None = None,
        on_batch: Callable[[list[Job]], None] | None = None,
        monitors: Callable[[str], SegmentMonitor] | None = None,
        asr: str | None = None,
    ) -> None:
        self.queue, self.store = queue, store
        self.monitors = monitors
        self.alerts = AlertStore(store.client, prefix=store.prefix)
        self.model, self.embedder, self.model_id = model, embedder, model_id
        self.batch_size = max(1, int(batch_size))
        self.name = name or default_consumer_name()
        self.on_batch = on_batch  # called after a batch is computed, before its commits (tests)
        self.stats = WorkerStats()
        self._known: set[str] = set()  # streams this worker has created/opened in the store
        self._lock = threading.Lock()
        self.asr = asr  # the Whisper checkpoint for the jobs' audio (None: the one each job's producer named)
        self._recognizers: dict[str, Any] = {}

    def run(self, *, concurrency: int = 1, stop: threading.Event | None = None,
            idle_exit: float | None = None) -> WorkerStats:
        """Work until `stop` is set (or, with `idle_exit`, until no job came for that many seconds)."""
        stop = stop or threading.Event()
        if self.monitors is not None:  # alert events a worker killed between its commit and its relay left
            self.alerts.sweep()
        # (A stopped worker's row stays in `tempo queue status` until it is unseen for `worker_ttl`.)
        names = [self.name] if concurrency <= 1 else [f"{self.name}-{k}" for k in range(concurrency)]
        return self._run(names, stop, idle_exit)

    def _run(self, names: list[str], stop: threading.Event, idle_exit: float | None) -> WorkerStats:
        if len(names) == 1:
            self._loop(names[0], stop, idle_exit)
            return self.stats
        threads = [threading.Thread(target=self._loop, args=(name, stop, idle_exit), daemon=True) for name in names]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join(10.0)
        return self.stats

    def _loop(self, consumer: str, stop: threading.Event, idle_exit: float | None) -> None:
        """Rounds of claim/read → process until `stop`; Redis going away and coming back is ridden out
        (engine/worker_faults.py: a notice, backoff, a notice; unacknowledged jobs are claimed again)."""
        last_work = time.monotonic()
        next_claim = 0.0
        outage = RedisOutage(f"worker {consumer}", stop)
        while not stop.is_set():
            try:
                streams = self.queue.streams()
                jobs: list[Job] = []
                if time.monotonic() >= next_claim:
                    jobs = self.queue.claim(consumer, self.batch_size, streams)
                    next_claim = time.monotonic() + min(5.0, self.queue.settings.claim_idle / 2)
                if len(jobs) < self.batch_size:
                    jobs += self.queue.read(consumer, self.batch_size - len(jobs), streams,
                                            block=0.05 if jobs else None)
                outage.ok()
                if not streams:
                    stop.wait(self.queue.settings.block)
                if jobs:
                    self.process(consumer, jobs)
                    last_work = time.monotonic()
                elif idle_exit is not None and time.monotonic() - last_work > idle_exit:
                    return
            except REDIS_DOWN as exc:
                if not outage.wait(exc):
                    return
                next_claim = 0.0  # what was in flight is pending: claim it back first
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                for name in self.queue.streams():  # Redis came back without its consumer groups
                    self.queue.register(name)

    def process(self, consumer: str, jobs: list[Job]) -> None:
        """Compress, embed, commit and acknowledge one batch of jobs (any streams, any order)."""
        t0 = time.perf_counter()
        work: list[tuple[Job, Segment]] = []
        skips: list[Job] = []
        for job in jobs:
            problem = job.problem()  # every field checked before anything is allocated for it
            if problem is not None:  # a poison job: retrying cannot mend it
                self._fail(job, problem, final=True)
            elif job.deliveries > self.queue.settings.max_failures:
                self._fail(job, f"its worker stopped {job.deliveries - 1} times while processing it", final=True)
            elif job.skip:
                skips.append(job)
            else:
                try:
                    work.append((job, job.segment()))
                except Exception as exc:  # this job's alone (MemoryError included): never its batch's
                    self._fail(job, f"{type(exc).__name__}: {exc}" if not isinstance(exc, JobError) else str(exc))
        landing: list[tuple[Job, Computed | None]] = [(job, None) for job in skips]
        if work:
            try:
                results = self._compute(work, GENERIC_QUERY)
                heard = self._speech(work)  # (speech failing is the jobs' failure too, retried the same way)
            except Exception as exc:  # one bad segment must not sink the batch: retry them one by one
                if len(work) == 1:
                    self._fail(work[0][0], f"{type(exc).__name__}: {exc}")
                    results, heard = [], []
                    work = []
                else:
                    log.info("batch of %d failed (%s); retrying its jobs one by one", len(work), exc)
                    self._commit_batch(landing)
                    for job, _ in work:
                        self.process(consumer, [job])
                    return
            for (_job, segment), cues in zip(work, heard, strict=True):
                segment.extra["cues"] = [*segment.extra.get("cues", ()), *cues]  # type: ignore[misc]
            if self.on_batch is not None:
                self.on_batch([j for j, _ in work])
            landing += [(job, (segment, *computed)) for (job, segment), computed in zip(work, results, strict=True)]
        self._commit_batch(landing)
        done = len(work) + len(skips)
        with self._lock:
            self.stats.batches += 1
        self.queue.note_worker(consumer, done, time.perf_counter() - t0)
        if self.monitors is not None:
            # The --verify questions owed for alerts these landings opened (or earlier ones a worker
            # left when it died), between batches as a single-process ingest asks them. Each alert
            # is recorded once, whichever worker answers first.
            for stream in dict.fromkeys(job.stream for job, _ in work):
                self.monitors(stream).idle()

    def _compute(
        self, work: list[tuple[Job, Segment]], query: str
    ) -> list[tuple[np.ndarray, np.ndarray, dict[str, float] | None]]:
        """Memory tokens (M, D), embedding (E,) and rule scores of each job's segment (`encode_batch`:
        segments whose streams have the same rule texts share a forward; the rules ride on the generic pass)."""
        rules: dict[str, tuple[list[str], list[str]]] = {}  # stream → (rule ids, texts)
        if self.monitors is not None:
            for stream in dict.fromkeys(job.stream for job, _ in work):
                monitor = self.monitors(stream)
                texts = monitor.queries()
                rules[stream] = (monitor.rule_ids(), texts)
        texts_of = [rules.get(job.stream, ([], []))[1] for job, _ in work]
        encoded = encode_batch(self.model, self.embedder, [s for _, s in work], texts_of,
                               batch_size=self.batch_size, query=query)
        scores: list[dict[str, float] | None] = [None] * len(work)
        for r, (job, _) in enumerate(work):
            if texts_of[r]:
                ids = rules[job.stream][0]
                scores[r] = {rule_id: float(encoded.rule_scores[r][j]) for j, rule_id in enumerate(ids)}
        return [(encoded.memory[i], encoded.embeddings[i], scores[i]) for i in range(len(work))]

    def _speech(self, work: list[tuple[Job, Segment]]) -> list[list[Cue]]:
        """The speech cues of each job's audio (none for a job without), with the worker's `asr`
        checkpoint, else the one the job's producer named (each loaded once, on the model's device)."""
        out: list[list[Cue]] = []
        for job, segment in work:
            audio = segment.extra.get("audio")
            name = self.asr or job.spec.asr
            if audio is None or name is None:
                out.append([])
                continue
            with self._lock:
                if name not in self._recognizers:
                    from tempo.models.asr import SpeechRecognizer

                    self._recognizers[name] = SpeechRecognizer(name, device=str(getattr(self.model, "device", "cpu")))
            grid = job.spec.sampling.window_duration
            out.append(transcribe_audio(self._recognizers[name], audio, segment.start, grid))  # type: ignore[arg-type]
        return out

    def _open_stream(self, job: Job) -> None:
        if job.stream in self._known:
            return
        spec = job.spec
        settings = stream_settings(self.model, self.embedder, spec.sampling, model_id=self.model_id,
                                   stored_tokens=spec.stored_tokens)
        source = dict(job.meta["source"])
        if spec.fingerprint:
            source["fingerprint"] = spec.fingerprint
        self.store.create_stream(job.stream, source, settings, spec.retention)
        self._known.add(job.stream)
        land_orphan_gaps(self, job.stream, spec.lease)  # dead jobs that came before the stream existed

    def _commit_batch(self, batch: list[tuple[Job, Computed | None]]) -> None:
        """Land a batch's segments (None: a skip marker, a gap) and acknowledge the landed jobs: one
        landing round trip per stream (two with rules: read, then MULTI/EXEC) and one for all the acks."""
        groups: dict[tuple[str, str], list[tuple[Job, SegmentRecord | None, dict[str, float] | None]]] = {}
        for job, computed in batch:
            try:
                self._open_stream(job)
                spec = job.spec
                record, scores = None, None
                if computed is not None:
                    segment, tokens, embedding, scores = computed
                    # As engine.ingest: a live segment's proxy keeps the frames the compressor was fed.
                    record = SegmentRecord.from_segment(segment, tokens, embedding, stored_tokens=spec.stored_tokens,
                                                        proxy=spec.proxy, processor=self.model.processor,
                                                        anchor=stored_anchor(family_of(self.model),
                                                                             self.model.processor, segment))
                    cues = sorted(segment.extra.get("cues", ()), key=lambda c: (c.start, c.end))  # type: ignore[attr-defined]
                    record = dataclasses.replace(record, cues=tuple(cues))  # committed with the segment
            except TempoError as exc:
                self._fail(job, str(exc))
                continue
            groups.setdefault((job.stream, spec.lease), []).append((job, record, scores))
        landed: list[Job] = []
        for (stream, lease), items in groups.items():
            try:
                landed += self._land_group(stream, lease, items)
            except REDIS_DOWN:
                raise  # not the jobs' fault: they stay pending, and the worker's loop waits for Redis
            except (TempoError, redis.RedisError) as exc:
                if len(items) == 1:
                    for job, _, _ in items:
                        self._fail(job, str(exc))
                    continue
                for item in items:  # one bad job never takes the others of its batch with it
                    try:
                        landed += self._land_group(stream, lease, [item])
                    except REDIS_DOWN:
                        raise
                    except (TempoError, redis.RedisError) as one:
                        self._fail(item[0], str(one))
        if not landed:
            return
        self.queue.ack(landed)
        with self._lock:
            self.stats.segments += sum(1 for job in landed if not job.skip)

    def _land_group(
        self, stream: str, lease: str, items: list[tuple[Job, SegmentRecord | None, dict[str, float] | None]]
    ) -> list[Job]:
        """Land one stream's jobs carrying one lease token; returns those landed (the others failed)."""
        made = [(job, r, sc) for job, r, sc in items if r is not None]
        skips = [job for job, r, _ in items if r is None]
        if self.monitors is not None and (
                any(sc is not None for _, _, sc in made)
                or self.store.client.hlen(self.alerts.k_staged_scores(stream))):
            results = self._land_with_rules(stream, lease, made, skips)  # type: ignore[arg-type]
        else:
            results = self.store.land_segments([r for _, r, _ in made if r is not None], lease=lease,
                                               skipped=[job.skipped_record() for job in skips])
        landed = []
        for job, result in zip([j for j, _, _ in made] + skips, results, strict=True):
            if result.status is CommitStatus.NOT_WRITER:
                self._fail(job, f"stream {job.stream!r} is being ingested by another process (its writer "
                                "lease is held by another ingest than this job's producer)")
            else:
                landed.append(job)
        return landed

    def _land_with_rules(
        self, stream: str, lease: str, made: list[tuple[Job, SegmentRecord, dict[str, float] | None]],
        skips: list[Job], attempts: int = 32,
    ) -> list[CommitResult]:
        """`land_segments` of one stream's jobs with its rules stepped over every segment the landing
        commits (ours, and staged ones whose scores wait in `k_staged_scores`), all in one MULTI/EXEC.

        Under WATCH of the stream's info, landed jobs, rule state and staged scores, the landing is
        worked out as the _LAND script will do it (job numbers after the last done contiguous one,
        in order, each landed job with a segment taking the next index), the rules are stepped over
        those segments from the committed rule state, and the scripts are queued: the landings, then
        each segment's rule commit ("through"). Another writer of those keys meanwhile aborts the
        EXEC (WatchError) and it is worked out again."""
        assert self.monitors is not None
        client, keys = self.store.client, self.store.keys
        k_scores = self.alerts.k_staged_scores(stream)
        watched = [keys.info(stream), keys.landed(stream), self.alerts.k_rule_state(stream), k_scores]
        records = [r for _, r, _ in made]
        skipped = [job.skipped_record() for job in skips]
        ours = {job.index: (job, record, scores) for job, record, scores in made}
        skip_seqs = {job.index for job in skips}
        with client.pipeline(transaction=True) as pipe:
            for _ in range(attempts):
                try:
                    pipe.watch(*watched)
                    committed, seq = pipe.hmget(keys.info(stream), "committed", "seq")
                    if committed is None:  # no such stream: the landing reports it
                        pipe.unwatch()
                        return self.store.land_segments(records, lease=lease, skipped=skipped)
                    landed = {int(k): v.decode() for k, v in pipe.hgetall(keys.landed(stream)).items()}
                    staged = {int(k): json.loads(v) for k, v in pipe.hgetall(k_scores).items()}
                    monitor = self.monitors(stream)
                    monitor.queries()
                    done = int(seq if seq is not None else committed)
                    index, nseq, thens = int(committed), done + 1, []
                    while True:  # the contiguous run this landing commits, as _LAND walks it
                        if nseq in landed:  # landed earlier (a job sent again lands nothing new)
                            kind, start, end, _slot = landed[nseq].split()
                            blob = staged.get(nseq) or {}
                            scores, wallclock = blob.get("s"), blob.get("wc")
                        elif nseq in ours:
                            job, record, scores = ours[nseq]
                            kind, start, end, wallclock = "s", record.start, record.end, record.wallclock_start
                        elif nseq in skip_seqs:
                            kind, start, end, scores, wallclock = "x", 0.0, 0.0, None, None
                        else:
                            break
                        if kind == "s":
                            index += 1
                            if scores:
                                then = monitor.observe_scored(index, float(start), float(end), wallclock, scores)
                                if then is not None:
                                    thens.append(then)
                        nseq += 1
                    pipe.multi()
                    results = self.store.queue_lands(pipe, records, lease=lease, skipped=skipped)
                    for job, record, scores in made:  # ours that wait for predecessors keep their scores
                        if job.index >= nseq and scores is not None:
                            pipe.hset(k_scores, str(job.index),
                                      json.dumps({"s": scores, "wc": record.wallclock_start}, separators=(",", ":")))
                    used = [str(q) for q in staged if q < nseq]
                    if used:  # committed by this landing (stepped just above) or an earlier one
                        pipe.hdel(k_scores, *used)
                    for then in thens:
                        then(pipe)
                    done_results = results(pipe.execute())
                    monitor.landed()  # the alert events now in the stream's outbox go to the alert log
                    return done_results
                except redis.WatchError:
                    continue
        raise JobError(f"stream {stream!r}: other workers kept landing its segments meanwhile; will retry")

    def _fail(self, job: Job, error: str, *, final: bool = False) -> None:
        """Count a failure; at `max_failures` (or `final`) dead-letter the job and skip its index.
        Otherwise it stays pending and is claimed again after `claim_idle` seconds."""
        attempts = self.queue.record_failure(job)
        log.warning("job %s (stream %r, segment %s) failed (attempt %d): %s", job.entry_id, job.stream,
                    job.meta.get("index"), attempts, error)
        if not final and attempts < self.queue.settings.max_failures:
            return
        try:
            record_gap(self, job)
        except (TempoError, redis.RedisError, KeyError, TypeError, ValueError) as exc:
            log.warning("could not record the gap of dead job %s: %s", job.entry_id, exc)
        self.queue.dead_letter(job, error, attempts)
        with self._lock:
            self.stats.dead += 1
