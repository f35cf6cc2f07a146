"""Ingest a source into memory (DESIGN §3): decode → generic SVLM pass → embedder → Redis.

Three stages, each owning its resource and joined by bounded queues: a decoder thread (PyAV) makes
segments; the calling thread runs the model (generic compression + SigLIP embedding) on batches; a
writer thread builds the records (proxy clips for live sources) and commits them to Redis per
segment, atomically and in order, so the stream's "last committed segment" is always a segment that
is entirely there and storage overlaps model work. Running the same ingest again resumes right after it (files seek
there; live sources continue their timeline), so a crash or Ctrl-C loses at most the batch in flight.

One writer per stream: an ingest holds the stream's writer lease in Redis (renewed by a thread,
released at the end, expiring `lease_seconds` after a crash), and every commit is checked against it.
Every status the store answers other than `committed` stops the run with an error; nothing the store
did not commit is counted. A run that fails before committing anything removes the stream it made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from tempo.errors import TempoError
from tempo.memory.errors import OutOfOrderCommitError, SourceMismatchError, StreamBusyError
from tempo.memory.proxy import ProxySettings
from tempo.memory.records import RetentionPolicy, SegmentRecord, StreamSettings
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import CommitStatus, StreamInfo
from tempo.models.config import GENERIC_QUERY
from tempo.models.embedder import SegmentEmbedder
from tempo.models.processor import SegmentVideoProcessor
from tempo.models.tempo_family import TempoModel
from tempo.settings import environment
from tempo.streaming import IngestStats, SamplingConfig, Segment, iter_segments
from tempo.streaming.segment import SourceInfo, is_live
from tempo.streaming.sources import fingerprint_file
from tqdm import tqdm

log = logging.getLogger(__name__)

_END = object()  # sentinel the decoder thread puts after the last segment

# Seconds a writer lease lives without renewal: how long a crashed ingest blocks the next one.
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds_from_env() -> float:
    """$TEMPO_WRITER_LEASE (seconds), else DEFAULT_LEASE_SECONDS."""
    raw = environment().writer_lease
    try:
        value = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        value = DEFAULT_LEASE_SECONDS
    return value if 0.5 <= value <= 86400 else DEFAULT_LEASE_SECONDS


@dataclass
class IngestReport:
    """What one `ingest` run did. Seconds; counts of segments."""

    stream: str
    source: str
    resumed_from: int  # first segment index this run produced
    committed: int  # segments committed by this run
    last_committed: int  # the stream's last committed index after the run (-1: none)
    video_seconds: float  # seconds of video committed by this run
    wall_seconds: float
    interrupted: bool = False
    decode: dict[str, Any] = field(default_factory=dict)  # decoder counters (errors, drops, gaps)
    gaps: list[dict[str, float]] = field(default_factory=list)  # stretches without video this run met

    @property
    def realtime_factor(self) -> float:
        """Video seconds ingested per wall-clock second."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "source": self.source,
            "resumed_from": self.resumed_from,
            "committed": self.committed,
            "last_committed": self.last_committed,
            "video_seconds": round(self.video_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "realtime_factor": round(self.realtime_factor, 3),
            "interrupted": self.interrupted,
            "decode": self.decode,
            "gaps": self.gaps,
        }


def stream_settings(
    model: TempoModel,
    embedder: SegmentEmbedder,
    sampling: SamplingConfig,
    *,
    model_id: str,
    stored_tokens: int = 16,
) -> StreamSettings:
    """The settings a stream's segments are made with; resuming with other ones is refused."""
    return StreamSettings(
        model_id=model_id,
        embedder_id=embedder.name,
        embedding_dim=embedder.dim,
        sample_fps=sampling.fps,
        window=sampling.window,
        max_edge=sampling.max_edge,
        tolerance=sampling.tolerance,
        sampling=sampling.sampling,
        tokens_per_segment=model.num_memory_tokens,
        token_dim=model.memory_dim,
        stored_tokens=min(stored_tokens, model.num_memory_tokens),
    )


def _decode_stats(stats: IngestStats | None) -> dict[str, Any]:
    if stats is None:
        return {}
    return {k: v for k, v in vars(stats).items() if isinstance(v, int | float | str | bool)}


class SegmentMonitor(Protocol):
    """Standing questions scored on every committed segment (tempo.agent.monitoring.RuleMonitor)."""

    def queries(self) -> list[str]:
        """Texts to score on the next batch besides the generic query (re-read cheaply per batch)."""
        ...

    def observe(self, batch: Sequence[Segment], scores: np.ndarray) -> list[Callable[[Any], None] | None]:
        """scores (n, R) of the last `queries()`; per segment, commands to commit with it (or None)."""
        ...

    def committed(self, records: Sequence[SegmentRecord]) -> None:
        """Called by the writer thread after `records` were committed."""
        ...

    def idle(self) -> None:
        """Work for the model thread between batches (e.g. verifying an alert with the global LLM)."""
        ...


class _Decoder(threading.Thread):
    """Runs the segment iterator in its own thread; a bounded queue gives back-pressure."""

    def __init__(self, segments: Any, depth: int) -> None:
        super().__init__(name="tempo-decode", daemon=True)
        self.segments = segments
        self.out: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for segment in self.segments:
                while not self.stop.is_set():
                    try:
                        self.out.put(segment, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, re-raised there
            self.error = exc
        finally:
            close = getattr(self.segments, "close", None)
            if close is not None:
                close()
            while True:
                try:
                    self.out.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    if self.stop.is_set():
                        break

    def next_batch(self, size: int) -> list[Segment] | None:
        """Up to `size` segments: waits for the first, takes what else is ready. None at the end."""
        first = self.out.get()
        if first is _END:
            return None
        batch = [first]
        while len(batch) < size:
            try:
                item = self.out.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self.out.put(_END)  # seen again by the next call
                break
            batch.append(item)
        return batch


class _Writer(threading.Thread):
    """Builds records and commits them in order, off the model's thread."""

    def __init__(
        self,
        store: RedisMemoryStore | None,
        settings: StreamSettings,
        proxy: ProxySettings | None,
        processor: SegmentVideoProcessor,
        last: int,
        on_commit: Callable[[list[SegmentRecord]], None] | None,
        depth: int = 4,
        lease: str | None = None,
    ) -> None:
        super().__init__(name="tempo-write", daemon=True)
        self.store = store
        self.lease = lease
        self.settings = settings
        self.proxy = proxy
        self.processor = processor  # the compressor's: proxies keep the frames it was fed
        self.on_commit = on_commit
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.last = last  # the stream's last committed index
        self.committed = 0  # segments committed by this writer
        self.video_seconds = 0.0
        self.error: BaseException | None = None

    def submit(
        self,
        batch: list[Segment],
        memory: np.ndarray,
        embeddings: np.ndarray,
        then: list[Callable[[Any], None] | None] | None = None,
    ) -> None:
        if self.error is not None:
            raise self.error
        self.inbox.put((batch, memory, embeddings, then))

    def finish(self) -> None:
        """Commit everything submitted, then stop; re-raises a commit error."""
        self.inbox.put(_END)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # drain: nothing after a failed commit may be written
            batch, memory, embeddings, then = item
            try:
                records = [
                    SegmentRecord.from_segment(
                        s,
                        memory[i],
                        embeddings[i],
                        stored_tokens=self.settings.stored_tokens,
                        proxy=self.proxy,
                        processor=self.processor,
                    )
                    for i, s in enumerate(batch)
                ]
                if self.store is not None:
                    results = self.store.put_segments(records, lease=self.lease, then=then)
                    self._check(records, results)
                    self.last = results[-1].committed if results else self.last
                else:
                    self.committed += len(batch)
                    self.video_seconds += sum(s.end - s.start for s in batch)
                if self.on_commit is not None:
                    self.on_commit(records)
            except BaseException as exc:  # handed to the model thread at its next submit/finish
                self.error = exc

    def _check(self, records: list[SegmentRecord], results: list[Any]) -> None:
        """Only `committed` is success: count what was, then fail on the first other status."""
        for record, result in zip(records, results, strict=True):
            if result.status is CommitStatus.COMMITTED:
                self.committed += 1
                self.video_seconds += record.end - record.start
                self.last = result.committed
                continue
            name = record.stream
            if result.status is CommitStatus.OUT_OF_ORDER:
                raise OutOfOrderCommitError(
                    f"segment {record.index} of stream {name!r} was refused: the stream's last committed "
                    f"segment is {result.committed}; nothing after it was stored"
                )
            if result.status is CommitStatus.DUPLICATE:
                raise StreamBusyError(
                    f"segment {record.index} of stream {name!r} was already committed by another writer; "
                    "only one ingest may write a stream at a time"
                )
            raise StreamBusyError(RedisMemoryStore.busy_message(name))


def _chain(
    first: Callable[[list[SegmentRecord]], None], second: Callable[[list[SegmentRecord]], None] | None
) -> Callable[[list[SegmentRecord]], None]:
    def both(records: list[SegmentRecord]) -> None:
        first(records)
        if second is not None:
            second(records)

    return both


def _continue_live_timeline(segment: Segment, offset_index: int, offset_time: float) -> Segment:
    """A live source restarted from scratch continues the stream's indices and times."""
    return dataclasses.replace(
        segment,
        index=segment.index + offset_index,
        first_frame_index=segment.first_frame_index + offset_index * segment.num_frames,
        start=segment.start + offset_time,
        end=segment.end + offset_time,
        timestamps=segment.timestamps + offset_time,
    )


def ingest(
    source: str,
    stream: str,
    *,
    model: TempoModel,
    embedder: SegmentEmbedder,
    store: RedisMemoryStore,
    model_id: str,
    sampling: SamplingConfig | None = None,
    retention: RetentionPolicy | None = None,
    stored_tokens: int = 16,
    proxy: ProxySettings | None = None,
    batch_size: int | None = None,
    queue_depth: int = 16,
    max_segments: int | None = None,
    progress: bool = True,
    commit: bool = True,
    on_commit: Callable[[list[SegmentRecord]], None] | None = None,
    monitor: SegmentMonitor | None = None,
    lease_seconds: float | None = None,
    model_lock: AbstractContextManager[Any] | None = None,
) -> IngestReport:
    """Ingest `source` into `stream`, resuming after the stream's last committed segment.

    `commit=False` runs decoding and the model only: no records, no Redis (to measure what storage costs).
    `proxy` (live sources): how proxy clips are encoded; None keeps what the stream recorded when it
    was created, else the defaults. The settings a new stream starts with are recorded in its settings.
    `max_segments` stops after that many segments (tests, previews). KeyboardInterrupt stops
    cleanly: the report says `interrupted` and everything committed stays committed.
    `monitor` scores its rules in each batch's generic pass and commits their state with the segments.
    `lease_seconds` (default $TEMPO_WRITER_LEASE, else 30 s): the writer lease's lifetime; a second
    ingest of the stream meanwhile fails with StreamBusyError.
    `model_lock` is held around each batch's model work (generic pass, rules, embedder) and released
    between batches, so a server's questions, which take the same lock, interleave with its ingests.
    """
    sampling = sampling or SamplingConfig()
    bs = max(1, int(batch_size or model.config.compress_batch_size))
    settings = stream_settings(model, embedder, sampling, model_id=model_id, stored_tokens=stored_tokens)
    t_start = time.perf_counter()

    # One writer per stream: the lease comes first, so a second ingest does not even open the source
    # (a camera may take one connection only). Opening the source before creating the stream gives a
    # clear error for a bad path/URL before anything is written.
    store.check_name(stream)
    lease = _Lease(store, stream, lease_seconds_from_env() if lease_seconds is None else lease_seconds) \
        if commit else None
    probe: Any = None
    info: StreamInfo | None = None
    start_index = 0
    live_offset = (0, 0.0)
    try:
        try:
            probe = iter_segments(source, stream_id=stream, config=sampling, start_segment=0)
            source_info: SourceInfo = probe.info
            if is_live(source_info):  # proxies keep its frames: the settings a new stream starts with
                settings = dataclasses.replace(
                    settings, extra={**settings.extra, "proxy": (proxy or ProxySettings()).to_dict()}
                )
            if commit:
                described: dict[str, Any] = source_info.to_dict()
                if source_info.kind == "file":  # so a resume or a recall can tell a replaced file
                    described["fingerprint"] = fingerprint_file(source_info.uri)
                info = store.create_stream(stream, described, settings, retention)
                known_uri = info.source.get("uri")
                if known_uri is not None and known_uri != source_info.uri:
                    raise SourceMismatchError(
                        f"stream {stream!r} was ingested from {known_uri!r}, not {source_info.uri!r}; "
                        "use another stream name for another source"
                    )
                info.check_source_unchanged(source_info.uri)
        except BaseException:
            if probe is not None:
                probe.close()
            raise
        if info is not None:
            start_index = info.next_index
            proxy = proxy or ProxySettings.from_dict(info.settings.extra.get("proxy"))
            if source_info.live and info.end is not None:
                live_offset = (info.next_index, float(info.end))
        return _run(
            source, stream, probe, info, lease, live_offset, start_index, model=model, embedder=embedder,
            store=store, settings=settings, sampling=sampling, proxy=proxy, bs=bs, queue_depth=queue_depth,
            max_segments=max_segments, progress=progress, commit=commit, on_commit=on_commit, monitor=monitor,
            t_start=t_start, model_lock=model_lock or contextlib.nullcontext(),
        )
    finally:
        # Whatever ended the run (an error, Ctrl-C at any point): a stream that never received a
        # segment goes, while this run still holds the lease.
        if lease is not None:
            _drop_if_empty(store, stream)
            lease.release()


def _drop_if_empty(store: RedisMemoryStore, stream: str) -> None:
    """A run that ends (failed or interrupted) with the stream never having had a segment leaves
    no empty stream behind. Called while this run still holds the writer lease."""
    try:
        if store.stream_info(stream).committed < 0:
            store.delete_stream(stream)
    except TempoError:  # Redis went away: the original error says more
        log.debug("could not check stream %r for removal", stream, exc_info=True)


class _Lease:
    """The stream's writer lease, renewed by a daemon thread every third of its lifetime."""

    def __init__(self, store: RedisMemoryStore, stream: str, seconds: float, token: str | None = None) -> None:
        self.store, self.stream, self.seconds = store, stream, seconds
        self.token = store.acquire_writer(stream, seconds, token)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="tempo-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.store.renew_writer(self.stream, self.token, self.seconds):
                    log.warning("lost the writer lease of stream %r; its commits will be refused", self.stream)
                    return
            except TempoError as exc:  # Redis unreachable: commits will fail and say so
                log.warning("could not renew the writer lease of stream %r: %s", self.stream, exc)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        with contextlib.suppress(TempoError):  # else it expires on its own
            self.store.release_writer(self.stream, self.token)


def _run(
    source: str,
    stream: str,
    probe: Any,
    info: StreamInfo | None,
    lease: _Lease | None,
    live_offset: tuple[int, float],
    start_index: int,
    *,
    model: TempoModel,
    embedder: SegmentEmbedder,
    store: RedisMemoryStore,
    settings: StreamSettings,
    sampling: SamplingConfig,
    proxy: ProxySettings | None,
    bs: int,
    queue_depth: int,
    max_segments: int | None,
    progress: bool,
    commit: bool,
    on_commit: Callable[[list[SegmentRecord]], None] | None,
    monitor: SegmentMonitor | None,
    t_start: float,
    model_lock: AbstractContextManager[Any],
) -> IngestReport:
    source_info: SourceInfo = probe.info
    if start_index and not source_info.live:
        probe.close()
        assert info is not None
        # Seek to the grid window after the last committed segment's: indices go on from
        # start_index whatever gaps lie before (see WindowAssembler).
        segments: Any = iter_segments(source, stream_id=stream, config=sampling, start_segment=start_index,
                                      start_slot=info.resume_slot)
    else:
        segments = probe

    total: int | None = None
    if source_info.duration and not source_info.live:
        total = max(0, int(np.ceil(source_info.duration / sampling.window_duration - 1e-9)))
    bar = tqdm(
        total=total,
        initial=min(start_index, total or start_index),
        desc=f"ingest {stream}",
        unit="seg",
        disable=not progress,
        dynamic_ncols=True,
    )
    decoder = _Decoder(segments, queue_depth)
    if not commit:
        monitor = None
    if monitor is not None:
        on_commit = _chain(monitor.committed, on_commit)
    writer = _Writer(
        store if commit else None,
        settings,
        proxy,
        model.processor,
        info.committed if info is not None else -1,
        on_commit if commit else None,
        lease=lease.token if lease is not None else None,
    )
    decoder.start()
    writer.start()
    produced = 0
    produced_seconds = 0.0
    interrupted = False
    try:
        while max_segments is None or produced < max_segments:
            want = bs if max_segments is None else min(bs, max_segments - produced)
            batch = decoder.next_batch(want)
            if batch is None:
                break
            if live_offset[0]:
                batch = [_continue_live_timeline(s, *live_offset) for s in batch]
            rules = monitor.queries() if monitor is not None else []
            then = None
            with model_lock:
                if rules:
                    # (n, M, D) generic memory and (n, R) rule relevance from one forward (shared vision pass)
                    _, memory, rule_scores = model.compress_with_rules(batch, GENERIC_QUERY, rules, batch_size=bs)
                else:
                    _, memory = model.compress(batch, GENERIC_QUERY, batch_size=bs)  # (n, M, D)
                    rule_scores = np.zeros((len(batch), 0), dtype=np.float32)
                embeddings = embedder.embed_segments([s.frames for s in batch])  # (n, E)
            if monitor is not None:
                then = monitor.observe(batch, rule_scores)
            if commit:
                writer.submit(batch, memory[:, : settings.stored_tokens].numpy(), embeddings, then)
            if monitor is not None:
                monitor.idle()
            produced += len(batch)
            produced_seconds += sum(s.end - s.start for s in batch)
            bar.update(len(batch))
            elapsed = time.perf_counter() - t_start
            bar.set_postfix_str(f"{produced_seconds / max(elapsed, 1e-9):.1f}× realtime")
        if decoder.error is not None and not isinstance(decoder.error, KeyboardInterrupt):
            raise decoder.error
    except KeyboardInterrupt:
        interrupted = True
    finally:
        decoder.stop.set()
        bar.close()
        # What the model already computed is committed (quick) even on Ctrl-C or a decode error.
        writer.finish()
        decoder.join(timeout=5.0)
    if monitor is not None and not interrupted:
        monitor.idle()  # verifications owed for the last batches
    if not commit:  # nothing was written: report what was processed
        writer.committed, writer.video_seconds = produced, produced_seconds
    gaps = []
    if commit and writer.committed and info is not None:
        after = info.end if info.end is not None else float("-inf")
        gaps = [g.to_dict() for g in store.gaps(stream) if g.end > after]
    return IngestReport(
        stream=stream,
        source=source_info.uri,
        resumed_from=start_index,
        committed=writer.committed,
        last_committed=writer.last,
        video_seconds=writer.video_seconds,
        wall_seconds=time.perf_counter() - t_start,
        interrupted=interrupted,
        decode=_decode_stats(getattr(segments, "stats", None)),
        gaps=gaps,
    )
