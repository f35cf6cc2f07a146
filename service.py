"""`TempoService`: the one object the CLI, the agent and the tool interfaces talk to.

It owns the long-lived resources — the Redis memory (embedded by default), the FAISS index, the
Tempo model and the SigLIP embedder — and loads each lazily, so `tempo streams` never loads a model
and `tempo ask` never starts a decoder it does not need.

    svc = TempoService(model="path/to/checkpoint")
    svc.ingest("camera.mp4", "cam1")
    result = svc.ask("cam1", "When does the truck arrive?")
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from tempo.errors import TempoError
from tempo.memory.anchors import AnchorCache
from tempo.memory.index import SearchHit, SegmentIndex
from tempo.memory.ingest import IngestReport, ingest
from tempo.memory.proxy import ProxySettings
from tempo.memory.recall import MemoryAskResult, QueryCache, answer_from_memory
from tempo.memory.records import RetentionPolicy
from tempo.memory.store import RedisMemoryStore, StreamInfo
from tempo.models import TempoInferenceConfig, TempoModel, resolve_model_name
from tempo.models.checkpoint import resolve_model_dir
from tempo.models.embedder import SegmentEmbedder
from tempo.models.tiny import SIGLIP_DIR_NAME
from tempo.streaming import SamplingConfig, probe_source

EMBEDDER_ENV = "TEMPO_EMBEDDER"
# SigLIP base (image–text embeddings, 768-d) is the default segment embedder.
DEFAULT_EMBEDDER_ID = "google/siglip-base-patch16-224"


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
    ) -> None:
        self.model_name = resolve_model_name(model)
        self._embedder_name = embedder
        self.redis_url = redis_url
        self.home = home
        self.device = device
        self.inference = inference or TempoInferenceConfig()
        self.cache_ttl = cache_ttl

    # ---- resources ------------------------------------------------------------------------------
    @cached_property
    def store(self) -> RedisMemoryStore:
        return RedisMemoryStore.connect(self.redis_url, self.home)

    @cached_property
    def index(self) -> SegmentIndex:
        return SegmentIndex.open(self.store, self.home)

    @cached_property
    def cache(self) -> QueryCache:
        return QueryCache(self.store.client, prefix=self.store.prefix, ttl=self.cache_ttl)

    @cached_property
    def anchors(self) -> AnchorCache:
        """Decoded anchor tokens kept in process: repeated questions skip their Redis reads."""
        return AnchorCache(self.store)

    @cached_property
    def model(self) -> TempoModel:
        return TempoModel.from_pretrained(self.model_name, device=self.device, config=self.inference)

    @property
    def embedder_name(self) -> str:
        """--embedder, else $TEMPO_EMBEDDER, else the `siglip/` beside the checkpoint, else SigLIP base."""
        if self._embedder_name:
            return self._embedder_name
        if os.environ.get(EMBEDDER_ENV):
            return os.environ[EMBEDDER_ENV]
        beside = self.model.model_dir / SIGLIP_DIR_NAME
        return str(beside) if beside.is_dir() else DEFAULT_EMBEDDER_ID

    @cached_property
    def embedder(self) -> SegmentEmbedder:
        directory = resolve_model_dir(self.embedder_name)
        return SegmentEmbedder.from_pretrained(directory, device=self.model.device)

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
    ) -> IngestReport:
        """Decode → generic pass → embed → commit, resuming the stream; the index is brought up to date."""
        RedisMemoryStore.check_name(stream)
        sampling = sampling or SamplingConfig(
            fps=self.inference.fps, window=self.inference.window, max_edge=self.inference.max_edge
        )
        source = absolute_source(source)
        if "://" not in source and source != "-":
            # A bad path or a non-media file is reported before the model is loaded (seconds).
            probe_source(source, sampling)
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
            )
        finally:
            # Whatever was committed (also on Ctrl-C or an error) gets indexed and snapshotted.
            if "store" in self.__dict__:
                with contextlib.suppress(TempoError):
                    self.index.sync()
                    self.index.save_if_changed()
        return report

    def ask(
        self,
        stream: str,
        question: str,
        *,
        top_k: int = 8,
        neighbours: int = 1,
        budget: int | None = None,
        time_range: tuple[float, float] | None = None,
        max_new_tokens: int | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> MemoryAskResult:
        """Answer from memory: top-K candidates recompressed for the question, anchors for the rest."""
        self._catch_up(stream)
        return answer_from_memory(
            question,
            stream,
            model=self.model,
            embedder=self.embedder,
            store=self.store,
            index=self.index,
            cache=self.cache,
            anchors=self.anchors,
            top_k=top_k,
            neighbours=neighbours,
            budget=budget,
            time_range=time_range,
            max_new_tokens=max_new_tokens,
            on_text=on_text,
        )

    def search_moments(
        self, stream: str, query: str, *, top_k: int = 5, time_range: tuple[float, float] | None = None
    ) -> list[SearchHit]:
        """The segments most similar to `query` (SigLIP text ↔ segment embeddings), best first."""
        self._catch_up(stream)
        return self.index.search(self.embedder.embed_text(query), top_k, streams=[stream], time_range=time_range)

    def _catch_up(self, stream: str) -> None:
        """Check the stream exists (else one sentence listing the known ones), then index what
        other processes committed since the index was loaded."""
        self.store.stream_info(stream)
        self.index.sync()

    def streams(self) -> list[StreamInfo]:
        return self.store.list_streams()

    def stream(self, name: str) -> StreamInfo:
        return self.store.stream_info(name)
