"""`TempoService`: resources loaded once, also when threads race for them (a server's first calls)."""

from __future__ import annotations

import threading
import time

from tempo.models import TempoModel
from tempo.models.embedder import SegmentEmbedder
from tempo.service import TempoService


def _race(n: int, get) -> list:
    barrier = threading.Barrier(n)
    got: list = []

    def first_call() -> None:
        barrier.wait()
        got.append(get())

    threads = [threading.Thread(target=first_call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return got


def test_concurrent_first_calls_load_the_model_and_embedder_once(live_memory, monkeypatch) -> None:
    loads: list[str] = []
    real_model, real_embedder = TempoModel.load.__func__, SegmentEmbedder.from_pretrained.__func__

    def slow_model(cls, *args, **kwargs):
        loads.append("model")
        time.sleep(0.3)  # a real checkpoint takes seconds: every racer arrives while it loads
        return real_model(cls, *args, **kwargs)

    def slow_embedder(cls, *args, **kwargs):
        loads.append("embedder")
        time.sleep(0.3)
        return real_embedder(cls, *args, **kwargs)

    monkeypatch.setattr(TempoModel, "load", classmethod(slow_model))
    monkeypatch.setattr(SegmentEmbedder, "from_pretrained", classmethod(slow_embedder))
    service = TempoService(model=str(live_memory.model_dir), redis_url=live_memory.url)
    embedders = _race(4, lambda: service.embedder)  # loads the model too (the embedder sits on its device)
    models = _race(4, lambda: service.model)
    assert sorted(loads) == ["embedder", "model"]
    assert len(embedders) == 4 and all(e is embedders[0] for e in embedders)
    assert len(models) == 4 and all(m is service.model for m in models)


def test_resuming_a_stream_with_other_sampling_is_refused_in_one_sentence(live_memory, live_service) -> None:
    import pytest
    from tempo.memory.errors import StreamSettingsMismatchError
    from tempo.streaming import SamplingConfig

    before = live_service.stream("cam")
    video = str(live_memory.root / "cam.mp4")
    for changed, said in (
        (SamplingConfig(max_edge=256), "max_edge 512 (now 256)"),
        (SamplingConfig(tolerance=0.1), "tolerance None (now 0.1)"),
    ):
        with pytest.raises(StreamSettingsMismatchError) as err:
            live_service.ingest(video, "cam", sampling=changed, progress=False)
        message = str(err.value)
        assert said in message and "\n" not in message and message.startswith("stream 'cam' was ingested with")
    after = live_service.stream("cam")
    assert (after.committed, after.settings) == (before.committed, before.settings)


def test_ingest_enforces_the_retention_policy_it_sets(live_memory, tmp_path) -> None:
    from tempo.memory import RetentionPolicy, SegmentIndex
    from tempo.streaming.synthetic import write_test_video

    video = tmp_path / "short.mp4"
    write_test_video(video, duration=12.0, fps=10, size=(96, 64))
    service = TempoService(model=str(live_memory.model_dir), redis_url=live_memory.url, home=tmp_path / "home")
    report = service.ingest(str(video), "retained", retention=RetentionPolicy(max_bytes=1), progress=False)
    info = service.stream("retained")
    assert report.committed == 3 and info.committed == 2
    assert (info.segments, info.bytes.total) == (0, 0)  # one byte holds no segment: all went
    assert SegmentIndex.open(service.store, tmp_path / "home2").timeline("retained").indices.tolist() == []
    service.store.delete_stream("retained")


def test_ingest_waits_for_the_model_lock_a_question_holds(live_memory, tmp_path) -> None:
    # A server runs ingest jobs and questions on one model: an ingest must not run the model while a
    # question holds the lock (it takes the lock per batch, so questions get turns between batches).
    from tempo.streaming.synthetic import write_test_video

    video = tmp_path / "locked.mp4"
    write_test_video(video, duration=12.0, fps=10, size=(96, 64))
    service = TempoService(model=str(live_memory.model_dir), redis_url=live_memory.url, home=tmp_path / "home")
    # Loaded before the lock is taken (loading is not a model call).
    assert service.model is not None and service.embedder is not None
    reports: list = []
    ingest = threading.Thread(
        target=lambda: reports.append(service.ingest(str(video), "locked", batch_size=1, progress=False))
    )
    with service.model_lock:
        ingest.start()
        time.sleep(3.0)  # ample time to decode and compress 3 segments on any machine were it not waiting
        assert ingest.is_alive()
        assert "locked" not in service.store.stream_names() or service.stream("locked").committed == -1
    ingest.join(timeout=120)
    assert reports[0].committed == 3 and service.stream("locked").committed == 2
    service.store.delete_stream("locked")
