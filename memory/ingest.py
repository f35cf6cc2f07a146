"""Ingest a source into memory (DESIGN §3): decode → generic SVLM pass → embedder → Redis.

Three stages, each owning its resource and joined by bounded queues: a decoder thread (PyAV) makes
segments; the calling thread runs the model (generic compression + SigLIP embedding) on batches; a
writer thread builds the records (proxy clips for live sources) and commits them to Redis per
segment, atomically and in order, so the stream's "last committed segment" is always a segment that
is entirely there and storage overlaps model work. Running the same ingest again resumes right after it (files seek
there; live sources continue their timeline), so a crash or Ctrl-C loses at most the batch in flight.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tempo.errors import TempoError
from tempo.memory.proxy import ProxySettings, is_live_source
from tempo.memory.records import RetentionPolicy, SegmentRecord, StreamSettings
from tempo.memory.store import RedisMemoryStore, StreamInfo
from tempo.models.config import GENERIC_QUERY
from tempo.models.embedder import SegmentEmbedder
from tempo.models.modeling import TempoModel
from tempo.models.processor import SegmentVideoProcessor
from tempo.streaming import IngestStats, SamplingConfig, Segment, iter_segments
from tempo.streaming.segment import SourceInfo
from tqdm import tqdm

log = logging.getLogger(__name__)

_END = object()  # sentinel the decoder thread puts after the last segment


class SourceMismatchError(TempoError):
    """A stream is resumed from another source than the one it was created from."""


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
        tokens_per_segment=model.num_memory_tokens,
        token_dim=model.memory_dim,
        stored_tokens=min(stored_tokens, model.num_memory_tokens),
        extra={"max_edge": sampling.max_edge, "tolerance": sampling.tolerance},
    )


def _decode_stats(stats: IngestStats | None) -> dict[str, Any]:
    if stats is None:
        return {}
    return {k: v for k, v in vars(stats).items() if isinstance(v, int | float | str | bool)}


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
    ) -> None:
        super().__init__(name="tempo-write", daemon=True)
        self.store = store
        self.settings = settings
        self.proxy = proxy
        self.processor = processor  # the compressor's: proxies keep the frames it was fed
        self.on_commit = on_commit
        self.inbox: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.last = last  # the stream's last committed index
        self.committed = 0  # segments committed by this writer
        self.video_seconds = 0.0
        self.error: BaseException | None = None

    def submit(self, batch: list[Segment], memory: np.ndarray, embeddings: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.inbox.put((batch, memory, embeddings))

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
            batch, memory, embeddings = item
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
                    results = self.store.put_segments(records)
                    self.last = results[-1].committed if results else self.last
                if self.on_commit is not None:
                    self.on_commit(records)
                self.committed += len(batch)
                self.video_seconds += sum(s.end - s.start for s in batch)
            except BaseException as exc:  # handed to the model thread at its next submit/finish
                self.error = exc


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
) -> IngestReport:
    """Ingest `source` into `stream`, resuming after the stream's last committed segment.

    `commit=False` runs decoding and the model only: no records, no Redis (to measure what storage costs).
    `proxy` (live sources): how proxy clips are encoded; None keeps what the stream recorded when it
    was created, else the defaults. The settings a new stream starts with are recorded in its settings.
    `max_segments` stops after that many segments (tests, previews). KeyboardInterrupt stops
    cleanly: the report says `interrupted` and everything committed stays committed.
    """
    sampling = sampling or SamplingConfig()
    bs = max(1, int(batch_size or model.config.compress_batch_size))
    settings = stream_settings(model, embedder, sampling, model_id=model_id, stored_tokens=stored_tokens)
    t_start = time.perf_counter()

    # Opening the source first gives a clear error for a bad path/URL before anything is written.
    probe = iter_segments(source, stream_id=stream, config=sampling, start_segment=0)
    source_info: SourceInfo = probe.info
    if is_live_source(source_info.to_dict()):
        settings = dataclasses.replace(
            settings, extra={**settings.extra, "proxy": (proxy or ProxySettings()).to_dict()}
        )
    info: StreamInfo | None = None
    start_index = 0
    live_offset = (0, 0.0)
    if commit:
        info = store.create_stream(stream, source_info, settings, retention)
        known_uri = info.source.get("uri")
        if known_uri is not None and known_uri != source_info.uri:
            probe.close()
            raise SourceMismatchError(
                f"stream {stream!r} was ingested from {known_uri!r}, not {source_info.uri!r}; "
                "use another stream name for another source"
            )
        start_index = info.next_index
        proxy = proxy or ProxySettings.from_dict(info.settings.extra.get("proxy"))
        if source_info.live and info.end is not None:
            live_offset = (info.next_index, float(info.end))
    if start_index and not source_info.live:
        probe.close()
        segments: Any = iter_segments(source, stream_id=stream, config=sampling, start_segment=start_index)
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
    writer = _Writer(
        store if commit else None,
        settings,
        proxy,
        model.processor,
        info.committed if info is not None else -1,
        on_commit if commit else None,
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
            _, memory = model.compress(batch, GENERIC_QUERY, batch_size=bs)  # (n, M, D)
            embeddings = embedder.embed_segments([s.frames for s in batch])  # (n, E)
            if commit:
                writer.submit(batch, memory[:, : settings.stored_tokens].numpy(), embeddings)
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
    if not commit:  # nothing was written: report what was processed
        writer.committed, writer.video_seconds = produced, produced_seconds
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
    )
