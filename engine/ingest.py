"""Ingest a source into memory (DESIGN §3): decode → generic SVLM pass → embedder → Redis.

Three stages, each owning its resource and joined by bounded queues: a decoder thread (PyAV) makes
segments; the calling thread runs the model on batches (`encode_batch`, engine/encode.py: generic
compression, the monitor's rules, SigLIP embedding; the queue workers call the same step); a
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
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tempo.engine.encode import encode_batch
from tempo.engine.ingest_decoder import SegmentDecoder
from tempo.engine.monitor import SegmentMonitor, Then
from tempo.engine.open_recall import stored_anchor
from tempo.engine.result import TEMPO_FAMILY, family_of
from tempo.engine.speech import BatchTranscriber, open_transcriber
from tempo.engine.text_track import with_cues
from tempo.errors import TempoError
from tempo.memory.errors import OutOfOrderCommitError, SourceMismatchError, StreamBusyError
from tempo.memory.lease import WriterLease, lease_seconds_from_env
from tempo.memory.proxy import FrameProcessor, ProxySettings
from tempo.memory.records import RetentionPolicy, SegmentRecord, StreamSettings
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import CommitStatus, StreamInfo
from tempo.streaming import IngestStats, SamplingConfig, Segment, SegmentStream, iter_segments
from tempo.streaming.hls_live_subtitles import LiveSubtitles, open_live_subtitles, without_polled
from tempo.streaming.segment import SourceInfo, is_live
from tempo.streaming.sources import fingerprint_file
from tempo.streaming.subtitles import Cue, CueTrack
from tqdm import tqdm

if TYPE_CHECKING:  # the model stack loads with the model (a producer, which shares helpers here, needs none)
    from tempo.models.embedder import SegmentEmbedder
    from tempo.models.family import ModelFamily

log = logging.getLogger(__name__)

_END = object()  # sentinel after the last batch handed to the writer

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
    speech: dict[str, Any] | None = None  # speech recognition's counters (engine/speech.py), when asked for

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
            **({"speech": self.speech} if self.speech is not None else {}),
        }


def stream_settings(
    model: ModelFamily,
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
        stored_tokens=min(stored_tokens, model.num_memory_tokens) if family_of(model) == TEMPO_FAMILY else 0,
        family=family_of(model),  # issue 23: the open family keeps no memory tokens (its anchors are frames)
    )


def decode_stats(stats: IngestStats | None) -> dict[str, Any]:
    if stats is None:
        return {}
    return {k: v for k, v in vars(stats).items() if isinstance(v, int | float | str | bool)}


class _Writer(threading.Thread):
    """Builds records and commits them in order, off the model's thread."""

    def __init__(
        self,
        store: RedisMemoryStore | None,
        settings: StreamSettings,
        proxy: ProxySettings | None,
        processor: FrameProcessor,
        last: int,
        on_commit: Callable[[list[SegmentRecord]], None] | None,
        depth: int = 4,
        lease: str | None = None,
        text_track: CueTrack | None = None,
    ) -> None:
        super().__init__(name="tempo-write", daemon=True)
        self.text_track = text_track  # cues committed with the segments they overlap
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
        then: list[Then] | None = None,
        speech: list[Cue] | None = None,
    ) -> None:
        if self.error is not None:
            raise self.error
        self.inbox.put((batch, memory, embeddings, then, speech))

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
            batch, memory, embeddings, then, speech = item
            try:
                records = [
                    SegmentRecord.from_segment(
                        s,
                        memory[i],
                        embeddings[i],
                        stored_tokens=self.settings.stored_tokens,
                        proxy=self.proxy,
                        processor=self.processor,
                        anchor=stored_anchor(self.settings.family, self.processor, s),
                    )
                    for i, s in enumerate(batch)
                ]
                track = CueTrack.merged([self.text_track or CueTrack(), CueTrack(list(speech or ()))])
                if track:  # the batch's speech cues (transcribed just before) commit with its segments
                    records = [with_cues(r, track) for r in records]
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


def continue_live_timeline(segment: Segment, offset_index: int, offset_time: float) -> Segment:
    """A live source restarted from scratch continues the stream's indices and times."""
    return dataclasses.replace(
        segment,
        index=segment.index + offset_index,
        first_frame_index=segment.first_frame_index + offset_index * segment.num_frames,
        start=segment.start + offset_time,
        end=segment.end + offset_time,
        timestamps=segment.timestamps + offset_time,
    )


@dataclass(frozen=True)
class IngestOptions:
    """How one ingest run reads, batches and stores (what `ingest`'s keyword arguments resolve to)."""

    sampling: SamplingConfig
    settings: StreamSettings  # the stream's settings as this run makes its segments
    proxy: ProxySettings | None  # live sources: how proxy clips are encoded
    batch_size: int  # segments per model batch
    queue_depth: int = 16  # decoded segments waiting for the model
    max_segments: int | None = None
    progress: bool = True
    commit: bool = True  # False: decode and run the model only (no records, no Redis)
    audio: bool = False  # speech recognition asked for: a live source decodes its audio beside its video


@dataclass
class _Run:
    """One ingest run, resolved: the source opened, the stream as found, the models and the hooks."""

    source: str
    stream: str
    probe: SegmentStream  # the source, opened from segment 0
    model: ModelFamily
    embedder: SegmentEmbedder
    store: RedisMemoryStore
    options: IngestOptions
    info: StreamInfo | None  # the stream before this run (None: commit=False)
    lease: WriterLease | None
    on_commit: Callable[[list[SegmentRecord]], None] | None
    monitor: SegmentMonitor | None
    model_lock: AbstractContextManager[Any]
    t_start: float  # time.perf_counter() when the run began
    text_track: CueTrack | None = None  # subtitles / transcript cues to commit with the segments
    speech: BatchTranscriber | None = None  # transcribes each batch's audio (engine/speech.py)
    subtitles: LiveSubtitles | None = None  # a live HLS source's WebVTT subtitles, polled as they appear

    @property
    def start_index(self) -> int:
        """The first segment index this run produces."""
        return self.info.next_index if self.info is not None else 0

    @property
    def live_offset(self) -> tuple[int, float]:
        """A live source restarted continues the stream at (segment index, seconds); (0, 0.0) otherwise."""
        if self.info is not None and self.probe.info.live and self.info.end is not None:
            return self.info.next_index, float(self.info.end)
        return 0, 0.0


def ingest(
    source: str,
    stream: str,
    *,
    model: ModelFamily,
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
    lease_wait: float | None = None,
    text_track: CueTrack | None = None,
    asr: Any = None,
) -> IngestReport:
    """Ingest `source` into `stream`, resuming after the stream's last committed segment.

    `commit=False` runs decoding and the model only: no records, no Redis (to measure what storage costs).
    `proxy` (live sources): how proxy clips are encoded; None keeps what the stream recorded when it
    was created, else the defaults. The settings a new stream starts with are recorded in its settings.
    `max_segments` stops after that many segments (tests, previews). KeyboardInterrupt stops
    cleanly: the report says `interrupted` and everything committed stays committed.
    `monitor` scores its rules in each batch's generic pass and commits their state with the segments.
    `lease_seconds` (default $TEMPO_WRITER_LEASE, else 30 s): the writer lease's lifetime; a second
    ingest of the stream meanwhile fails with StreamBusyError. `lease_wait` (default: one lease
    period; 0: refuse at once): how long to wait, with a countdown, for a lease another live process
    holds; a holder on this host that is no longer running is taken over at once (memory/lease.py).
    `model_lock` is held around each batch's model work (generic pass, rules, embedder) and released
    between batches, so a server's questions, which take the same lock, interleave with its ingests.
    `text_track`: cues (tempo.streaming.subtitles) each segment keeps, committed with it. A live HLS
    source's WebVTT subtitles are polled as they appear and each batch commits its own
    (streaming/hls_live_subtitles.py).
    `asr` (a models.asr.SpeechRecognizer): each batch's audio is transcribed on the model thread and its
    cues commit with the batch's segments (engine/speech.py); files and live sources alike.
    """
    t_start = time.perf_counter()
    sampling = sampling or SamplingConfig()
    options = IngestOptions(
        sampling=sampling,
        settings=stream_settings(model, embedder, sampling, model_id=model_id, stored_tokens=stored_tokens),
        proxy=proxy,
        batch_size=max(1, int(batch_size or model.config.compress_batch_size)),
        queue_depth=queue_depth,
        max_segments=max_segments,
        progress=progress,
        commit=commit,
        audio=asr is not None,
    )
    # One writer per stream: the lease comes first, so a second ingest does not even open the source
    # (a camera may take one connection only). Opening the source before creating the stream gives a
    # clear error for a bad path/URL before anything is written.
    store.check_name(stream)
    lease = WriterLease(store, stream, lease_seconds_from_env() if lease_seconds is None else lease_seconds,
                        wait=lease_wait, progress=progress) if commit else None
    speech: BatchTranscriber | None = None
    subtitles: LiveSubtitles | None = None
    try:
        probe, info, options = _open(source, stream, store, options, retention)
        grid = options.sampling.window_duration
        speech = open_transcriber(asr, probe, source, grid=grid) if asr is not None else None
        if (subtitles := open_live_subtitles(source, probe)) is not None:
            text_track = without_polled(text_track)  # read again as they appear, on the live timeline
        return _run(_Run(
            source=source, stream=stream, probe=probe, model=model, embedder=embedder, store=store,
            options=options, info=info, lease=lease, on_commit=on_commit, monitor=monitor,
            model_lock=model_lock or contextlib.nullcontext(), t_start=t_start, text_track=text_track,
            speech=speech, subtitles=subtitles,
        ))
    finally:
        if speech is not None:
            speech.close()
        if subtitles is not None:
            subtitles.close()
        # Whatever ended the run (an error, Ctrl-C at any point): a stream that never received a
        # segment goes, while this run still holds the lease.
        if lease is not None:
            _drop_if_empty(store, stream)
            lease.release()


def _open(
    source: str,
    stream: str,
    store: RedisMemoryStore,
    options: IngestOptions,
    retention: RetentionPolicy | None,
) -> tuple[SegmentStream, StreamInfo | None, IngestOptions]:
    """Open the source and create (or find) the stream; `options` with the proxy settings the run
    keeps (a live stream records them; a resumed one uses what it recorded)."""
    probe: Any = None
    info: StreamInfo | None = None
    settings, proxy = options.settings, options.proxy
    try:
        probe = iter_segments(source, stream_id=stream, config=options.sampling, start_segment=0,
                              audio=options.audio)
        source_info: SourceInfo = probe.info
        settings = dataclasses.replace(settings, extra={**settings.extra, "decoder": probe.stats.decoder})
        if is_live(source_info):  # proxies keep its frames: the settings a new stream starts with
            settings = dataclasses.replace(
                settings, extra={**settings.extra, "proxy": (proxy or ProxySettings()).to_dict()}
            )
        if options.commit:
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
        proxy = proxy or ProxySettings.from_dict(info.settings.extra.get("proxy"))
    return probe, info, dataclasses.replace(options, settings=settings, proxy=proxy)


def _drop_if_empty(store: RedisMemoryStore, stream: str) -> None:
    """A run that ends (failed or interrupted) with the stream never having had a segment leaves
    no empty stream behind. Called while this run still holds the writer lease."""
    try:
        if store.stream_info(stream).committed < 0:
            store.delete_stream(stream)
    except TempoError:  # Redis went away: the original error says more
        log.debug("could not check stream %r for removal", stream, exc_info=True)


def _segments(run: _Run) -> Any:
    """The segments this run reads: the opened source, or (a file resumed) the source again from
    the grid window after the last committed segment's."""
    if run.start_index and not run.probe.info.live:
        run.probe.close()
        assert run.info is not None
        # Indices go on from start_index whatever gaps lie before (see WindowAssembler).
        return iter_segments(run.source, stream_id=run.stream, config=run.options.sampling,
                             start_segment=run.start_index, start_slot=run.info.resume_slot)
    return run.probe


def _progress_bar(run: _Run) -> tqdm:
    source_info: SourceInfo = run.probe.info
    total: int | None = None
    if source_info.duration and not source_info.live:
        total = max(0, int(np.ceil(source_info.duration / run.options.sampling.window_duration - 1e-9)))
    return tqdm(
        total=total,
        initial=min(run.start_index, total or run.start_index),
        desc=f"ingest {run.stream}",
        unit="seg",
        disable=not run.options.progress,
        dynamic_ncols=True,
    )


@dataclass
class _Progress:
    """What the model thread has done so far. Counts of segments; seconds of video."""

    produced: int = 0
    seconds: float = 0.0
    interrupted: bool = False


def _run(run: _Run) -> IngestReport:
    source_info: SourceInfo = run.probe.info
    options = run.options
    segments = _segments(run)
    bar = _progress_bar(run)
    decoder = SegmentDecoder(segments, options.queue_depth)
    monitor = run.monitor if options.commit else None
    on_commit = run.on_commit
    if monitor is not None:
        on_commit = _chain(monitor.committed, on_commit)
    writer = _Writer(
        run.store if options.commit else None,
        options.settings,
        options.proxy,
        run.model.processor,
        run.info.committed if run.info is not None else -1,
        on_commit if options.commit else None,
        lease=run.lease.token if run.lease is not None else None,
        text_track=run.text_track,
    )
    decoder.start()
    writer.start()
    done = _Progress()
    try:
        _encode_batches(run, decoder, writer, monitor, bar, done)
        if decoder.error is not None and not isinstance(decoder.error, KeyboardInterrupt):
            raise decoder.error
    except KeyboardInterrupt:
        done.interrupted = True
    finally:
        decoder.stop.set()
        bar.close()
        # What the model already computed is committed (quick) even on Ctrl-C or a decode error.
        writer.finish()
        decoder.join(timeout=5.0)
    if monitor is not None and not done.interrupted:
        monitor.idle()  # verifications owed for the last batches
    if not options.commit:  # nothing was written: report what was processed
        writer.committed, writer.video_seconds = done.produced, done.seconds
    gaps = []
    if options.commit and writer.committed and run.info is not None:
        after = run.info.end if run.info.end is not None else float("-inf")
        gaps = [g.to_dict() for g in run.store.gaps(run.stream) if g.end > after]
    return IngestReport(
        stream=run.stream,
        source=source_info.uri,
        resumed_from=run.start_index,
        committed=writer.committed,
        last_committed=writer.last,
        video_seconds=writer.video_seconds,
        wall_seconds=time.perf_counter() - run.t_start,
        interrupted=done.interrupted,
        decode=decode_stats(getattr(segments, "stats", None)),
        gaps=gaps,
        speech=run.speech.counters.to_json() if run.speech is not None else None,
    )


def _encode_batches(
    run: _Run, decoder: SegmentDecoder, writer: _Writer, monitor: SegmentMonitor | None, bar: tqdm, done: _Progress
) -> None:
    """The model thread: batches from the decoder → `encode_batch` (under the model lock) → the monitor
    → the writer, until the source ends or `max_segments` are produced."""
    options = run.options
    limit, bs, offset = options.max_segments, options.batch_size, run.live_offset
    while limit is None or done.produced < limit:
        batch = decoder.next_batch(bs if limit is None else min(bs, limit - done.produced))
        if batch is None:
            break
        heard = batch  # as the source gave it: its audio is on the same clock
        if offset[0]:
            batch = [continue_live_timeline(s, *offset) for s in batch]
        rules = monitor.queries() if monitor is not None else []
        with run.model_lock:
            # (n, M, D) generic memory, (n, E) embeddings and each segment's rule relevance
            encoded = encode_batch(run.model, run.embedder, batch, [rules] * len(batch), batch_size=bs)
        speech = run.speech.cues(heard, shift=offset[1], model_lock=run.model_lock) if run.speech else None
        if run.subtitles is not None:  # waits briefly for subtitle segments that lag the video
            speech = [*(speech or ()), *run.subtitles.take(heard[0].start, heard[-1].end, shift=offset[1])]
        then = monitor.observe(batch, np.stack(encoded.rule_scores)) if monitor is not None else None  # (n, R)
        if options.commit:
            writer.submit(batch, encoded.memory[:, : options.settings.stored_tokens], encoded.embeddings, then, speech)
        if monitor is not None:
            monitor.idle()
        done.produced += len(batch)
        done.seconds += sum(s.end - s.start for s in batch)
        bar.update(len(batch))
        elapsed = time.perf_counter() - run.t_start
        said = f", {run.speech.counters.cues} speech cues" if run.speech is not None else ""
        said += f", {run.subtitles.cues_read} subtitle cues" if run.subtitles is not None else ""
        bar.set_postfix_str(f"{done.seconds / max(elapsed, 1e-9):.1f}× realtime{said}")
