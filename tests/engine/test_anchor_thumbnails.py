"""Anchor thumbnails of the open-weights family (issue 23): ingest stores each segment's anchor (its
smallest rendition, one small frame) with the segment, and recall reads anchors from there instead of
decoding the file again. Real Redis, a real generated video, the tiny Qwen3-VL, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import redis
from tempo.engine.open_recall import anchor_thumbnail
from tempo.memory.replay import load_segments
from tempo.memory.store import RedisMemoryStore
from tempo.memory.thumbnails import decode_thumbnail, encode_thumbnail
from tempo.models.processor import SegmentVideoProcessor
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.renditions import render_clip, rendition_ladder
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "qwen3-vl-tiny", seed=0)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """28 s (7 segments) of a 16:9 texture, so the anchors are not square."""
    root = tmp_path_factory.mktemp("video")
    return write_test_video(root / "wide.mp4", duration=28.0, fps=10.0, size=(256, 144), texture=True)


def test_the_thumbnail_codec_is_lossless_and_refuses_what_is_not_one() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    data = encode_thumbnail(frame)
    assert np.array_equal(decode_thumbnail(data), frame)
    for bad in (data[:5], b"XX" + data[2:], data[:-3]):
        with pytest.raises(ValueError, match="anchor thumbnail"):
            decode_thumbnail(bad)
    with pytest.raises(ValueError, match="out of bounds"):
        encode_thumbnail(np.zeros((64, 8192, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_thumbnail(np.zeros((32, 64), np.uint8))


def _ask(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["ask", *argv, "--json", "--budget", "40", "--max-new-tokens", "4"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ingest_stores_each_anchor_and_answers_equal_those_from_the_file(
    qwen_dir: Path, video: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--model", str(qwen_dir), "--redis-url", redis_url]
    assert main(["ingest", str(video), "--stream", "thumbs", *db]) == 0
    capsys.readouterr()
    client = redis.Redis.from_url(redis_url)
    store = RedisMemoryStore(client)
    info = store.stream_info("thumbs")
    indices = list(range(info.first, info.committed + 1))
    assert len(indices) == 7
    thumbs = store.anchor_thumbnails("thumbs", indices)
    processor = SegmentVideoProcessor.from_dir(qwen_dir)
    factor = processor.config.patch_size * processor.config.merge_size
    for seg, data in zip(load_segments(store, info, indices), thumbs, strict=True):
        assert data is not None and data == anchor_thumbnail(processor, seg)
        frames = processor.compressor_frames(seg.frames)
        smallest = rendition_ladder(*frames.shape[:3], factor=factor)[0]
        rendered = render_clip(seg.index, frames, seg.timestamps, smallest)
        assert np.array_equal(decode_thumbnail(data), rendered.frames[0])  # the pixels the file would give
        assert decode_thumbnail(data).shape[0] == factor  # one token high: a few KB, whatever the source
    assert info.bytes.proxy >= sum(len(t) for t in thumbs if t)  # counted in the stream's bytes

    # --top-k 1 keeps most segments as anchors: the same answer and timeline from the thumbnails as
    # from frames read again from the file (the thumbnails removed: the path for streams without).
    asked = _ask(capsys, "--stream", "thumbs", "What is shown?", *db, "--top-k", "1")
    assert sum(r["kind"] == "anchor" for r in asked["segments"]) >= 4
    for i in indices:
        client.hdel(store.keys.segment("thumbs", i), "a")
    assert store.anchor_thumbnails("thumbs", indices) == [None] * len(indices)
    reread = _ask(capsys, "--stream", "thumbs", "What is shown?", *db, "--top-k", "1")
    assert asked["segments"] == reread["segments"] and asked["answer"] == reread["answer"]


def test_a_corrupt_thumbnail_is_one_sentence(
    qwen_dir: Path, video: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--model", str(qwen_dir), "--redis-url", redis_url]
    assert main(["ingest", str(video), "--stream", "broken", "--max-segments", "4", *db]) == 0
    client = redis.Redis.from_url(redis_url)
    keys = RedisMemoryStore(client).keys
    for i in range(4):
        client.hset(keys.segment("broken", i), "a", b"TA1garbage")
    capsys.readouterr()
    rc = main(["ask", "--stream", "broken", "What?", *db, "--top-k", "1", "--max-new-tokens", "2"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc != 0 and err.startswith("tempo: error: ") and "anchor thumbnail is" in err


def test_thumbnails_commit_with_their_segment_on_both_write_paths_and_leave_with_it(redis_url: str) -> None:
    import dataclasses

    from tempo.memory import SegmentRecord, StreamSettings
    from tempo.memory.retention import trim_oldest
    from tempo.streaming.segment import SourceInfo

    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    settings = StreamSettings(model_id="q", embedder_id="e", embedding_dim=4, token_dim=8, stored_tokens=0,
                              family="qwen3-vl")  # fmt: skip
    source = SourceInfo(uri="/videos/a.mp4", kind="file", live=False)
    rng = np.random.default_rng(0)

    def record(stream: str, i: int) -> SegmentRecord:
        thumb = encode_thumbnail(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
        return SegmentRecord(stream, i, 4.0 * i, 4.0 * i + 4, 4.0 * i + np.arange(8) / 2, (96, 160),
                             first_frame_index=8 * i, embedding=np.full(4, 0.5, np.float32), anchor=thumb)  # fmt: skip

    for name in ("direct", "queued"):
        store.create_stream(name, source, settings)
    direct = [record("direct", i) for i in range(3)]
    store.put_segments(direct)
    queued = [record("queued", i) for i in range(3)]
    store.land_segments([queued[2], queued[0]])  # out of order: 2 waits in staging for 1
    store.land_segments([queued[1]])
    for name, records in (("direct", direct), ("queued", queued)):
        assert store.anchor_thumbnails(name, [0, 1, 2, 3]) == [r.anchor for r in records] + [None]
        assert store.stream_info(name).bytes.proxy == sum(len(r.anchor or b"") for r in records)
    # A commit again (a resumed ingest) is a duplicate: the first thumbnail stays.
    store.put_segments([dataclasses.replace(direct[2], anchor=encode_thumbnail(np.zeros((32, 64, 3), np.uint8)))])
    assert store.anchor_thumbnails("direct", [2]) == [direct[2].anchor]
    assert trim_oldest(store, "direct", 2) == 2
    assert store.anchor_thumbnails("direct", [0, 1, 2]) == [None, None, direct[2].anchor]
    assert store.stream_info("direct").bytes.proxy == len(direct[2].anchor or b"")


def test_a_live_stream_without_thumbnails_answers_from_its_proxies(
    qwen_dir: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from tempo.service import TempoService

    service = TempoService(model=str(qwen_dir), redis_url=redis_url)
    sys.modules["agent_live_memory"].add_live_stream(service, "live", segments=6)  # proxies, no thumbnails
    assert service.store.anchor_thumbnails("live", range(6)) == [None] * 6
    asked = _ask(capsys, "--stream", "live", "Where is the square?", "--model", str(qwen_dir), "--redis-url",
                 redis_url, "--top-k", "1")  # fmt: skip
    rows = asked["segments"]
    assert [r["index"] for r in rows] == list(range(6)) and sum(r["kind"] == "anchor" for r in rows) >= 3
    assert all(r["rendition"] is not None and r["tokens"] > 0 for r in rows) and asked["tokens"] <= 40
