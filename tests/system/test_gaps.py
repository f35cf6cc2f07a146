"""Gaps in a source's timestamps lose nothing: every listed segment is stored, the gap is recorded.

Three ways a stretch without video reaches ingest, each through the real decoder, the tiny model and
Redis: a variable-frame-rate file whose timestamps jump 6 s, a file damaged in the middle ingested
one segment per batch, and a live TCP stream whose camera stalls for 6 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tempo.agent.conversations import Conversations
from tempo.service import TempoService
from tempo.settings import AskSettings
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.synthetic import RealTimePublisher, write_corrupted, write_mpegts, write_test_video

FPS = 30.0
SAMPLING = SamplingConfig(max_edge=128)
LIVE = SamplingConfig(max_edge=128, connect_timeout=5.0, read_timeout=10.0, reconnect_attempts=0)


def _jumping_times(before: float, jump: float, after: float) -> list[float]:
    """Frame times of a recording that stops for `jump` seconds after `before` seconds."""
    first = [i / FPS for i in range(round(before * FPS))]
    return first + [before + jump + i / FPS for i in range(round(after * FPS))]


def _listed(source: Path, config: SamplingConfig) -> list[tuple[int, float, float]]:
    """What `tempo segments` lists for the file: (index, start, end)."""
    with iter_segments(str(source), config=config) as segments:
        return [(s.index, s.start, s.end) for s in segments]


def _stored(service: TempoService, stream: str) -> list[tuple[int, float, float]]:
    records = service.store.iter_segments(stream, tokens=False, embedding=False, recompress=False)
    return [(r.index, r.start, r.end) for r in records]


@pytest.fixture(scope="module")
def jump_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s of video over 22 s of timestamps: frames stop at 6 s and go on at 12 s."""
    times = _jumping_times(6.0, 6.0, 10.0)
    return write_test_video(tmp_path_factory.mktemp("gaps") / "jump.mp4", duration=22.0, fps=FPS,
                            frame_times=times, size=(192, 112))


def test_a_6s_timestamp_jump_in_a_file_loses_no_segment_and_is_recorded_as_a_gap(
    jump_mp4: Path, redis_url: str, tmp_path: Path, tiny_checkpoint: Path,
    tempo_cli: Callable[..., object],
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    report = service.ingest(str(jump_mp4), "vfr", sampling=SAMPLING, progress=False)
    listed = _listed(jump_mp4, SAMPLING)
    assert [i for i, _, _ in listed] == list(range(len(listed)))  # indices without a hole
    assert _stored(service, "vfr") == listed
    assert report.committed == len(listed) and report.last_committed == len(listed) - 1
    info = service.stream("vfr")
    assert info.end == pytest.approx(22.0, abs=1e-6) == listed[-1][2]
    # The gap: from the end of the last segment before the jump to the first frame after it.
    (gap,) = service.store.gaps("vfr")
    assert gap.end == pytest.approx(12.0, abs=1e-3)
    assert 6.0 <= gap.start <= 6.6
    assert report.gaps == [gap.to_dict()]

    out = tempo_cli("streams", "--json")
    (entry,) = json.loads(out.stdout)["streams"]  # type: ignore[attr-defined]
    assert entry["gaps"] == [gap.to_dict()] and entry["end"] == pytest.approx(22.0)

    # The answer path sees it too, and re-reading the file for recompression seeks past the gap.
    result = Conversations(service).ask_once(
        "vfr", "What happens after the pause?", settings=AskSettings(top_k=8, max_new_tokens=2)
    )
    assert sorted(c["index"] for c in result["candidates"]) == list(range(len(listed)))
    assert result["gaps"] == [{**gap.to_dict(), "note": gap.describe()}]
    assert gap.describe().startswith("no video from 6.")


def test_resuming_after_a_gap_continues_the_indices_and_seeks_past_it(
    jump_mp4: Path, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    first = service.ingest(str(jump_mp4), "vfr", sampling=SAMPLING, progress=False, max_segments=2)
    assert first.last_committed == 1
    second = service.ingest(str(jump_mp4), "vfr", sampling=SAMPLING, progress=False)
    assert second.resumed_from == 2
    assert _stored(service, "vfr") == _listed(jump_mp4, SAMPLING)
    assert len(service.store.gaps("vfr")) == 1


def test_a_file_damaged_in_the_middle_ingested_one_segment_per_batch_keeps_every_segment(
    tmp_path: Path, redis_url: str, tiny_checkpoint: Path
) -> None:
    whole = write_mpegts(tmp_path / "whole.ts", duration=20.0, fps=FPS, keyint=30, size=(192, 112))
    # Garbage over 30 % of the bytes: about 6 s of video cannot be decoded.
    damaged = write_corrupted(whole, tmp_path / "damaged.ts", at=0.35, length=int(whole.stat().st_size * 0.3))
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path / "home")
    report = service.ingest(str(damaged), "cam", sampling=SAMPLING, progress=False, batch_size=1)
    listed = _listed(damaged, SAMPLING)
    assert _stored(service, "cam") == listed
    assert report.committed == len(listed)
    assert service.stream("cam").end == pytest.approx(20.0, abs=1e-6) == listed[-1][2]
    gaps = service.store.gaps("cam")
    assert len(gaps) == 1 and gaps[0].seconds >= 4.0


def test_a_live_stream_that_stalls_6s_loses_no_segment_and_records_the_gap(
    tmp_path: Path, redis_url: str, tiny_checkpoint: Path
) -> None:
    # 9.7 s of video; the camera stalls 6 s after 6 s. (Its last frame, 15.67 s, is too far from the
    # 16 s slot to fill it: a live source has no container end to say where the video stops.)
    times = _jumping_times(6.0, 6.0, 3.7)
    ts = write_mpegts(tmp_path / "camera.ts", duration=15.7, fps=FPS, keyint=15, frame_times=times,
                      size=(192, 112))
    publisher = RealTimePublisher(ts.read_bytes(), 9.7, pause=6.0, pause_at=0.6)
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path / "home")
    try:
        report = service.ingest(f"tcp://127.0.0.1:{publisher.port}", "gate", sampling=LIVE, progress=False,
                                batch_size=1)
    finally:
        publisher.close()
    stored = _stored(service, "gate")
    listed = _listed(ts, SAMPLING)  # the same video read as a file
    assert [i for i, _, _ in stored] == [i for i, _, _ in listed] == list(range(len(listed)))
    assert [s for _, s, _ in stored] == pytest.approx([s for _, s, _ in listed], abs=1e-3)
    assert report.committed == len(stored)
    # The live timeline ends one sampling interval after the last sampled frame, as the video does.
    assert service.stream("gate").end == pytest.approx(listed[-1][2], abs=0.5)
    (gap,) = service.store.gaps("gate")
    assert gap.end == pytest.approx(12.0, abs=0.05) and gap.seconds >= 5.0
