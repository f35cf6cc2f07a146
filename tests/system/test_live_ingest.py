"""A live source through the whole system: MPEG-TS over loopback TCP → ingest → memory → answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tempo.agent.conversations import Conversations
from tempo.memory.proxy import ProxySettings, compressor_input, proxy_info, proxy_shape
from tempo.service import TempoService
from tempo.settings import AskSettings
from tempo.streaming import SamplingConfig
from tempo.streaming.synthetic import RealTimePublisher, write_mpegts

SECONDS = 9.0  # content per connection, sent at real time


@pytest.fixture(scope="module")
def camera_ts(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_mpegts(tmp_path_factory.mktemp("live") / "camera.ts", duration=SECONDS, fps=30.0, keyint=15)
    return Path(path).read_bytes()


@pytest.fixture()
def publisher(camera_ts: bytes) -> Iterator[RealTimePublisher]:
    running = RealTimePublisher(camera_ts, SECONDS)
    yield running
    running.close()


LIVE = SamplingConfig(max_edge=128, connect_timeout=5.0, read_timeout=5.0, reconnect_attempts=0)


def test_live_ingest_stores_proxies_and_wall_clock_and_answers_from_them(
    publisher: RealTimePublisher, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    started = time.time()
    report = service.ingest(
        f"tcp://127.0.0.1:{publisher.port}",
        "gate",
        sampling=LIVE,
        progress=False,
        max_segments=2,
        proxy=ProxySettings(crf=26),
    )
    assert (report.committed, report.last_committed) == (2, 1)
    assert service.stream("gate").summary()["proxy"]["crf"] == 26  # the stream records its proxy settings
    records = list(service.store.iter_segments("gate", tokens=False, embedding=False))
    assert [r.index for r in records] == [0, 1]
    for r in records:
        assert r.proxy is not None and r.file_ref is None  # a live source keeps a proxy clip
        # ... of the frames the compressor was fed, at its input size, with the quality it ended at
        fed = compressor_input(np.zeros((r.num_frames, *r.frame_size, 3), np.uint8), service.model.processor)
        assert proxy_shape(r.proxy) == fed.shape[:3] and proxy_info(r.proxy).crf >= 26
        assert r.wallclock_start is not None and started - 1 <= r.wallclock_start <= time.time()
    assert records[0].end == pytest.approx(records[1].start)

    settings = AskSettings(top_k=8, max_new_tokens=4)
    result = Conversations(service).ask_once("gate", "Is the gate open?", settings=settings)
    assert sorted(c["index"] for c in result["candidates"]) == [0, 1]  # recompressed from the proxies: no file
    rows = result["segments"]
    assert all(r["tokens"] >= 4 and r["kind"] == "candidate" and r["relevance"] is not None for r in rows)


def test_a_live_stream_ingested_again_continues_its_indices_and_timeline(
    camera_ts: bytes, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    first = RealTimePublisher(camera_ts, SECONDS)
    try:
        url = f"tcp://127.0.0.1:{first.port}"
        service.ingest(url, "gate", sampling=LIVE, progress=False, max_segments=1)
    finally:
        first.close()
    end_of_first = service.stream("gate").end
    # The camera comes back on the same address: same source URI, so the stream resumes.
    second = RealTimePublisher(camera_ts, SECONDS, port=first.port)
    try:
        report = service.ingest(url, "gate", sampling=LIVE, progress=False, max_segments=1)
    finally:
        second.close()
    assert (report.resumed_from, report.last_committed) == (1, 1)
    records = list(service.store.iter_segments("gate", tokens=False, embedding=False))
    assert [r.index for r in records] == [0, 1]
    assert records[1].start >= end_of_first  # times go on after the first connection's segments
    assert np.all(np.diff(np.concatenate([r.timestamps for r in records])) > 0)
