"""The work queue's producer: decode and segment a source on CPU, one job per segment (DESIGN §3).

`produce` (`tempo ingest SOURCE --stream S --queue`) pushes each segment to the stream's job queue
(memory/jobqueue.py: keys, backpressure, what a job holds); the workers (engine/worker.py) run the
model on them. No model runs here: a producer needs no GPU.

Text rides with the jobs: each job carries the cues of the recording's text track that overlap its
segment (subtitle files and streams), and, when the spec names a speech recognition checkpoint
(`--asr`), the segment's audio (16 kHz mono, 16-bit, zstd: about 128 KB per 4 s before compression,
a few per cent of the frames'), which the worker transcribes on its accelerator beside the
compressor. Whisper on the producer's CPU would run at about real time for the small models and
hold up a file's producer, while the workers are the processes that scale and own the models.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tempo.engine.ingest import continue_live_timeline, decode_stats
from tempo.engine.speech import open_audio
from tempo.engine.worker_faults import REDIS_DOWN, RedisOutage
from tempo.memory.errors import SourceMismatchError
from tempo.memory.jobqueue import JobQueue, JobSpec
from tempo.memory.lease import WriterLease, lease_seconds_from_env
from tempo.memory.store import RedisMemoryStore
from tempo.streaming import Segment, iter_segments
from tempo.streaming.hls_live_subtitles import open_live_subtitles, without_polled
from tempo.streaming.sources import fingerprint_file
from tempo.streaming.subtitles import Cue, CueTrack

FILE_PUSH_BATCH = 4  # a file producer's jobs per transaction (see _produce)


@dataclass
class ProduceReport:
    """What one producer run queued. Counts of segments; seconds."""

    stream: str
    source: str
    resumed_from: int
    queued: int = 0
    dropped: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    decode: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "source": self.source, "resumed_from": self.resumed_from,
                "queued": self.queued, "dropped": self.dropped, "video_seconds": round(self.video_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3), "interrupted": self.interrupted, "decode": self.decode}


def produce(
    source: str,
    stream: str,
    *,
    queue: JobQueue,
    store: RedisMemoryStore,
    spec: JobSpec,
    max_segments: int | None = None,
    stop: threading.Event | None = None,
    lease_seconds: float | None = None,
    lease_wait: float | None = None,
    progress: bool = True,
    text_track: CueTrack | None = None,
) -> ProduceReport:
    """Decode `source` and queue one job per segment for `stream`, resuming after what is already
    queued or committed (files seek there; live sources continue the stream's timeline).

    One writer per stream, as `tempo ingest`: the producer holds the stream's writer lease while it
    runs (StreamBusyError, before the source is opened, when another ingest or producer holds it;
    `lease_seconds`: default $TEMPO_WRITER_LEASE, else 30 s) and every job carries its token, which
    the workers' commits are checked against. A producer run again takes the lease under the token
    of the jobs still queued, so they still land. `lease_wait` and `progress`: as `tempo ingest`'s
    (wait with a countdown for a lease a live process holds; take a dead one's over at once).
    `text_track`: cues each job carries (those overlapping its segment); with `spec.asr` each job also
    carries its segment's audio, which the workers transcribe (see the module doc)."""
    store.check_name(stream)
    seconds = lease_seconds_from_env() if lease_seconds is None else lease_seconds
    lease = WriterLease(store, stream, seconds, queue.state(stream).get("lease") or None,
                        wait=lease_wait, progress=progress, stop=stop)
    try:
        queue.set_lease(stream, lease.token)
        return _produce(source, stream, queue=queue, store=store, spec=dataclasses.replace(spec, lease=lease.token),
                        max_segments=max_segments, stop=stop, text_track=text_track)
    finally:
        lease.release()


def _produce(
    source: str,
    stream: str,
    *,
    queue: JobQueue,
    store: RedisMemoryStore,
    spec: JobSpec,
    max_segments: int | None,
    stop: threading.Event | None,
    text_track: CueTrack | None = None,
) -> ProduceReport:
    t0 = time.perf_counter()
    probe = iter_segments(source, stream_id=stream, config=spec.sampling, start_segment=0, audio=spec.asr is not None)
    info = probe.info
    try:
        audio = open_audio(probe, source) if spec.asr is not None else None
    except BaseException:
        probe.close()
        raise
    done, end = -1, None  # the last job number done contiguously, and the stream's end (seconds)
    known_info = None
    if stream in store.stream_names():
        known = known_info = store.stream_info(stream)
        known_uri = known.source.get("uri")
        if known_uri is not None and known_uri != info.uri:
            probe.close()
            raise SourceMismatchError(f"stream {stream!r} was ingested from {known_uri!r}, not {info.uri!r}; "
                                      "use another stream name for another source")
        try:
            known.check_source_unchanged(info.uri)  # SourceChangedError: a replaced file
        except BaseException:
            probe.close()
            raise
        done, end = store.landed_through(stream), known.end
    if info.kind == "file":
        spec = dataclasses.replace(spec, fingerprint=fingerprint_file(info.uri))
    state = queue.state(stream)
    produced = int(state.get("produced", -1))
    if produced > done:
        end = float(state["produced_end"])
    start = max(done, produced) + 1
    queue.register(stream)
    segments: Any = probe
    offset = (0, 0.0)
    if info.live:
        if start and end is not None:
            offset = (start, float(end))
    elif start:
        probe.close()
        # Seek to the grid window after the last job queued (or landed), as a resumed `tempo ingest`
        # does: the keyframe before it, then frames skipped by their timestamps. Without the slot (the
        # queue's state was deleted, or came from before slots were kept) the earlier segments are
        # decoded and skipped, since where job `start` begins depends on the gaps before it.
        slot = None
        if produced >= done and "produced_slot" in state:
            slot = int(state["produced_slot"])
        elif known_info is not None and done == known_info.committed and known_info.committed >= 0:
            slot = known_info.resume_slot
        segments = iter_segments(source, stream_id=stream, config=spec.sampling, start_segment=start, start_slot=slot)
    report = ProduceReport(stream, info.uri, start)
    subtitles = open_live_subtitles(source, probe)  # a live HLS source's WebVTT, polled as it grows
    if subtitles is not None:
        text_track = without_polled(text_track)
    # A live source's job goes out at once; a file's (decoded faster than real time) go out a few at a
    # time, in one transaction each (`push_many`).
    batch = 1 if info.live else max(1, min(FILE_PUSH_BATCH, queue.settings.max_jobs))
    pending: list[Segment] = []

    outage = RedisOutage(f"producer of stream {stream!r}", stop)

    def flush() -> bool:
        """Queue the pending segments; False when a stop ended the wait for room (or for Redis)."""
        if not pending:
            return True
        while True:  # Redis restarting: a notice, backoff, and the same jobs pushed again
            try:
                dropped = queue.push_many(pending, spec, live=info.live, stop=stop)
                outage.ok()
                break
            except REDIS_DOWN as exc:
                if not outage.wait(exc):
                    return False
        if dropped < 0:
            return False
        report.dropped += dropped
        report.queued += len(pending)
        report.video_seconds += sum(s.end - s.start for s in pending)
        pending.clear()
        return True

    try:
        for segment in segments:
            if max_segments is not None and report.queued + len(pending) >= max_segments:
                break
            heard = audio.take(segment.start, segment.end) if audio is not None else None  # its own clock
            polled = subtitles.take(segment.start, segment.end, shift=offset[1]) if subtitles is not None else []
            if offset[0]:
                segment = continue_live_timeline(segment, *offset)
            pending.append(_with_text(segment, heard, text_track, polled))
            if len(pending) >= batch and not flush():
                report.interrupted = True
                break
            if stop is not None and stop.is_set():
                flush()  # what is decoded already goes out, if there is room
                report.interrupted = True
                break
        if not report.interrupted and not flush():
            report.interrupted = True
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        for closing in (segments, audio, subtitles):
            close = getattr(closing, "close", None)
            if close is not None:
                close()
    report.decode = decode_stats(getattr(segments, "stats", None))
    report.wall_seconds = time.perf_counter() - t0
    return report


def _with_text(segment: Segment, audio: np.ndarray | None, text_track: CueTrack | None,
               polled: list[Cue] | None = None) -> Segment:
    """The segment with what its job carries beside the frames: its cues (also `polled`, a live HLS
    source's subtitles over its time) and its audio ((n,) float32 at 16 kHz; see the module doc)."""
    if not text_track and audio is None and not polled:
        return segment
    extra = dict(segment.extra)
    if text_track or polled:
        cues = text_track.overlapping(segment.start, segment.end) if text_track else []
        extra["cues"] = sorted([*cues, *(polled or ())], key=lambda c: (c.start, c.end))
    if audio is not None:
        extra["audio"] = audio
    return dataclasses.replace(segment, extra=extra)
