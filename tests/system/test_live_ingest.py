"""A live source through the whole system: MPEG-TS over loopback TCP → ingest → memory → answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loopback import StallingPublisher  # tests/system/loopback.py
from tempo.service import TempoService
from tempo.streaming import SamplingConfig
from tempo.streaming.synthetic import write_mpegts

SECONDS = 9.0  # content per connection, sent at real time


def OneShotPublisher(data: bytes, port: int = 0) -> StallingPublisher:
    """Serves an MPEG-TS file once on 127.0.0.1, paced at real time, like a camera that then hangs up."""
    return StallingPublisher(data, seconds=SECONDS, pause=0.0, at=1.0, port=port)


@pytest.fixture(scope="module")
def camera_ts(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_mpegts(tmp_path_factory.mktemp("live") / "camera.ts", duration=SECONDS, fps=30.0, keyint=15)
    return Path(path).read_bytes()


@pytest.fixture()
def publisher(camera_ts: bytes) -> Iterator[OneShotPublisher]:
    running = OneShotPublisher(camera_ts)
    yield running
    running.close()


LIVE = SamplingConfig(max_edge=128, connect_timeout=5.0, read_timeout=5.0, reconnect_attempts=0)


def test_live_ingest_stores_proxies_and_wall_clock_and_answers_from_them(
    publisher: OneShotPublisher, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    started = time.time()
    report = service.ingest(
        f"tcp://127.0.0.1:{publisher.port}", "gate", sampling=LIVE, progress=False, max_segments=2
    )
    assert (report.committed, report.last_committed) == (2, 1)
    records = list(service.store.iter_segments("gate", tokens=False, embedding=False))
    assert [r.index for r in records] == [0, 1]
    for r in records:
        assert r.proxy is not None and r.file_ref is None  # a live source keeps a proxy clip
        assert r.wallclock_start is not None and started - 1 <= r.wallclock_start <= time.time()
    assert records[0].end == pytest.approx(records[1].start)

    result = service.ask("gate", "Is the gate open?", top_k=8, max_new_tokens=4)
    assert result.candidates == [0, 1]  # recompressed from the proxies: no file to re-read
    assert (result.plan.counts >= 4).all() and result.plan.candidate.all()
    assert not np.isnan(result.plan.relevance).any()


def test_a_live_stream_ingested_again_continues_its_indices_and_timeline(
    camera_ts: bytes, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    first = OneShotPublisher(camera_ts)
    try:
        url = f"tcp://127.0.0.1:{first.port}"
        service.ingest(url, "gate", sampling=LIVE, progress=False, max_segments=1)
    finally:
        first.close()
    end_of_first = service.stream("gate").end
    # The camera comes back on the same address: same source URI, so the stream resumes.
    second = OneShotPublisher(camera_ts, port=first.port)
    try:
        report = service.ingest(url, "gate", sampling=LIVE, progress=False, max_segments=1)
    finally:
        second.close()
    assert (report.resumed_from, report.last_committed) == (1, 1)
    records = list(service.store.iter_segments("gate", tokens=False, embedding=False))
    assert [r.index for r in records] == [0, 1]
    assert records[1].start >= end_of_first  # times go on after the first connection's segments
    assert np.all(np.diff(np.concatenate([r.timestamps for r in records])) > 0)
