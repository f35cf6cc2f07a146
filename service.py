"""`TempoService`: the long-lived resources every way in shares, and nothing above them.

It owns the Redis memory (embedded by default), the FAISS index, the caches, the model and the SigLIP
embedder, the model lock and the retention threads, and loads each lazily, so `tempo streams` never
loads a model and `tempo ask` never starts a decoder it does not need. Asking (the agent graph,
threads) lives above it, in `tempo.agent.Conversations`; it never imports the agent.

    svc = TempoService(model="path/to/checkpoint")
    svc.ingest("camera.mp4", "cam1")
    result = Conversations(svc).ask_once("cam1", "When does the truck arrive?")
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from tempo.engine.ingest import IngestReport, ingest
from tempo.engine.monitor import SegmentMonitor
from tempo.engine.recall import RecallPipeline
from tempo.engine.text_track import fuse_hits
from tempo.errors import TempoError
from tempo.memory.alerts import AlertStore
from tempo.memory.anchors import AnchorCache
from tempo.memory.caches import AnswerCache, QueryCache
from tempo.memory.index import SearchHit, SegmentIndex
from tempo.memory.proxy import ProxySettings
from tempo.memory.records import RetentionPolicy
from tempo.memory.retention import RetentionWorker, collect_garbage
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import StreamInfo
from tempo.memory.text_index import KeywordHit, read_cues
from tempo.models import TempoInferenceConfig, TempoModel, resolve_model_name
from tempo.models.asr import SpeechRecognizer
from tempo.models.checkpoint import resolve_model_dir
from tempo.models.embedder import SegmentEmbedder
from tempo.models.tiny import SIGLIP_DIR_NAME
from tempo.settings import ENV_EMBEDDER, environment
from tempo.streaming import SamplingConfig, probe_source
from tempo.streaming.audio import FileAudio
from tempo.streaming.subtitles import Cue, CueTrack, load_text_track

log = logging.getLogger(__name__)

EMBEDDER_ENV = ENV_EMBEDDER
# SigLIP base (image–text embeddings, 768-d) is the default segment embedder.
DEFAULT_EMBEDDER_ID = "google/siglip-base-patch16-224"


T = TypeVar("T")


class loaded_once(Generic[T]):
    """`cached_property` whose first computation runs once per instance even when threads race for
    it (two concurrent first MCP calls must not both load a 6B model); later reads take no lock.

    functools.cached_property holds no lock since Python 3.12 (and a class-wide one before it).
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]
        try:
            return obj.__dict__[self.name]
        except KeyError:
            pass
        # dict.setdefault is atomic: every racer gets the same lock for this attribute.
        lock = obj.__dict__.setdefault(f"_{self.name}_lock", threading.Lock())
        with lock:
            if self.name not in obj.__dict__:
                obj.__dict__[self.name] = self.func(obj)
        return obj.__dict__[self.name]


def absolute_source(source: str) -> str:
    """A local file as an absolute path (memory keeps it to re-read frames later); URLs unchanged."""
    path = Path(source).expanduser()
    return str(path.resolve()) if "://" not in source and source != "-" and path.exists() else source


class TempoService:
    """Memory + model + embedder, loaded on first use. Thread-safe for reads; one ingest per stream."""

    def __init__(
        self,
        *,
        model: str | None = None,
        embedder: str | None = None,
        redis_url: str | None = None,
        home: str | Path | None = None,
        device: str | None = None,
        inference: TempoInferenceConfig | None = None,
        cache_ttl: float = 3600.0,
        retention_interval: float = 10.0,
    ) -> None:
        self.model_name = resolve_model_name(model)
        self._embedder_name = embedder
        self.redis_url = redis_url
        self.home = home
        self.device = device
        self.inference = inference or TempoInferenceConfig()
        self.cache_ttl = cache_ttl
        self.retention_interval = retention_interval  # seconds between two retention passes
        self.model_lock = threading.RLock()  # one model, many threads: model calls take turns

    # ---- resources ------------------------------------------------------------------------------
    @loaded_once
    def store(self) -> RedisMemoryStore:
        return RedisMemoryStore.connect(self.redis_url, self.home)

    @loaded_once
    def index(self) -> SegmentIndex:
        return SegmentIndex.open(self.store, self.home)

    @loaded_once
    def cache(self) -> QueryCache:
        return QueryCache(self.store.client, prefix=self.store.prefix, ttl=self.cache_ttl)

    @loaded_once
    def answers(self) -> AnswerCache:
        return AnswerCache(self.store.client, prefix=self.store.prefix, ttl=self.cache_ttl)

    @loaded_once
    def anchors(self) -> AnchorCache:
        """Decoded anchor tokens kept in process: repeated questions skip their Redis reads."""
        return AnchorCache(self.store)

    @loaded_once
    def model(self) -> TempoModel:
        from tempo.models.qwen3vl_family import load_model_family

        # The checkpoint's family: a Qwen3-VL directory loads the open-weights family (issue 23).
        return load_model_family(self.model_name, device=self.device, config=self.inference)

    @property
    def embedder_name(self) -> str:
        """--embedder, else $TEMPO_EMBEDDER, else the `siglip/` beside the checkpoint, else SigLIP base."""
        if self._embedder_name:
            return self._embedder_name
        from_env = environment().embedder
        if from_env:
            return from_env
        beside = self.model.model_dir / SIGLIP_DIR_NAME
        return str(beside) if beside.is_dir() else DEFAULT_EMBEDDER_ID

    @loaded_once
    def embedder(self) -> SegmentEmbedder:
        directory = resolve_model_dir(self.embedder_name)
        return SegmentEmbedder.from_pretrained(directory, device=self.model.device)

    def speech_recognizer(self, asr: str) -> SpeechRecognizer:
        """The Whisper pipeline of `asr` (a directory or hub id), loaded once per service and id."""
        loaded: dict[str, SpeechRecognizer] = self.__dict__.setdefault("_recognizers", {})
        with self.model_lock:
            if asr not in loaded:
                loaded[asr] = SpeechRecognizer(asr, device=str(self.model.device))  # beside the compressor
            return loaded[asr]

    # ---- operations -----------------------------------------------------------------------------
    def ingest(
        self,
        source: str,
        stream: str,
        *,
        sampling: SamplingConfig | None = None,
        retention: RetentionPolicy | None = None,
        progress: bool = True,
        max_segments: int | None = None,
        batch_size: int | None = None,
        proxy: ProxySettings | None = None,
        monitors: Callable[[str], SegmentMonitor] | None = None,
        lease_wait: float | None = None,
        subtitles: Sequence[str] = (),
        text_track: CueTrack | None = None,
        asr: str | None = None,
    ) -> IngestReport:
        """Decode → generic pass → embed → commit, resuming the stream; the index is brought up to date.

        With `monitors` (stream name → its monitor: `tempo.agent.monitoring.ingest.monitored_ingest`
        gives the stream's rules and delivers their alerts' webhooks) the monitor's queries are scored
        on every segment and what it returns is committed with the segment. The stream's retention
        policy (`retention`, else the one it was created with) runs beside the ingest on its own
        thread, then once more (bounded) before returning.
        Each segment keeps the cues overlapping it (`text_track`, else the `subtitles` files, else the
        file's sidecar VIDEO.srt/.vtt, plus its container's text subtitle streams); with `asr` (a Whisper
        directory or hub id) also the speech of its audio track, transcribed batch by batch as the
        segments are made and committed with them (files and live sources; engine/speech.py).
        """
        RedisMemoryStore.check_name(stream)
        sampling = sampling or SamplingConfig(
            fps=self.inference.fps, window=self.inference.window, max_edge=self.inference.max_edge
        )
        source = absolute_source(source)
        if "://" not in source and source != "-":
            # A bad path or a non-media file is reported before the model is loaded (seconds).
            probe_source(source, sampling)
        if text_track is None:
            text_track = load_text_track(source, subtitles)
        if asr is not None and "://" not in source and source != "-":
            FileAudio(source).close()  # a file without audio is told in one sentence before a model loads
        recognizer = self.speech_recognizer(asr) if asr is not None else None
        worker = RetentionWorker(self.store, interval=self.retention_interval, streams=[stream]).start()
        try:
            report = ingest(
                source,
                stream,
                model=self.model,
                embedder=self.embedder,
                store=self.store,
                model_id=self.model_name,
                sampling=sampling,
                retention=retention,
                progress=progress,
                max_segments=max_segments,
                batch_size=batch_size,
                proxy=proxy,
                monitor=monitors(stream) if monitors is not None else None,
                model_lock=self.model_lock,  # a server's questions and ingest jobs take turns per batch
                lease_wait=lease_wait,  # for a lease another process holds (engine/ingest.py)
                text_track=text_track,
                asr=recognizer,
            )
        finally:
            worker.stop()
            # Whatever was committed (also on Ctrl-C or an error) gets its retention pass, then is
            # indexed and snapshotted.
            with contextlib.suppress(TempoError):
                collect_garbage(self.store, [stream])
            if "store" in self.__dict__:
                with contextlib.suppress(TempoError):
                    self.index.sync()
                    self.index.save_if_changed()
        return report

    @loaded_once
    def alerts(self) -> AlertStore:
        """Rules, rule state and alerts (same Redis as the memory)."""
        return AlertStore.of(self.store)

    def start_retention(self, *, interval: float | None = None) -> RetentionWorker:
        """Enforce every stream's retention policy on a daemon thread until `.stop()` (or the end of a
        `with` block); long-running servers (`tempo mcp`, `tempo serve`) call this when they start."""
        # The store is connected on the worker's thread: a server starts even while Redis is down.
        return RetentionWorker(lambda: self.store, interval=interval or self.retention_interval).start()

    @loaded_once
    def recall(self) -> RecallPipeline:
        """The steps of answering from memory on this service's model, memory and caches (the
        per-question settings are the caller's, passed to each step)."""
        return RecallPipeline(
            model=self.model,
            embedder=self.embedder,
            store=self.store,
            index=self.index,
            model_id=self.model_name,
            query_cache=self.cache,
            answer_cache=self.answers,
            anchors=self.anchors,
            lock=self.model_lock,
        )

    def search_moments(
        self, stream: str, query: str, *, top_k: int = 5, time_range: tuple[float, float] | None = None
    ) -> list[SearchHit]:
        """The segments that best match `query`, best first: the closest by SigLIP text ↔ segment
        embeddings ∪ those whose cue words match (BM25), fused by reciprocal rank (engine/text_track.py)."""
        return fuse_hits(stream, *self.moment_candidates(stream, query, top_k=top_k, time_range=time_range),
                         top_k)[:top_k]

    def moment_candidates(
        self, stream: str, query: str, *, top_k: int = 5, time_range: tuple[float, float] | None = None
    ) -> tuple[list[SearchHit], list[KeywordHit]]:
        """The two rankings `search_moments` fuses: FAISS top-K by similarity, keyword (BM25) top-K."""
        self._catch_up(stream)
        hits = self.index.search(self.embedder.embed_text(query), top_k, streams=[stream], time_range=time_range)
        return hits, self.recall.keywords.search(stream, query, top_k, time_range)

    def transcript(self, stream: str, time_range: tuple[float, float] | None = None) -> list[Cue]:
        """The cues (subtitles, speech) of `stream` overlapping `time_range` (seconds; None: all), in
        time order, each once (a cue over two segments is kept by both)."""
        info = self.store.stream_info(stream)
        lo, hi = time_range if time_range is not None else (float("-inf"), float("inf"))
        indices = range(info.first, info.committed + 1) if time_range is None else \
            self.store.indices_in_time_range(stream, lo, hi)
        cues = {c: None for cs in read_cues(self.store, stream, list(indices)).values() for c in cs
                if c.end > lo and c.start < hi}
        return sorted(cues, key=lambda c: (c.start, c.end, c.text))

    def _catch_up(self, stream: str) -> None:
        """Check the stream exists (else one sentence listing the known ones), then index what
        other processes committed since the index was loaded."""
        self.store.stream_info(stream)
        self.index.sync()

    def streams(self) -> list[StreamInfo]:
        return self.store.list_streams()

    def stream(self, name: str) -> StreamInfo:
        return self.store.stream_info(name)

