"""Gaps in time, one writer per stream, and a full disk, on a real Redis."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tempo.memory import CommitStatus, MemoryUnavailableError, RedisMemoryStore
from tempo.memory.embedded import redis_server_binary, spawn_redis_server
from tempo.memory.errors import StreamBusyError
from tempo.memory.records import Gap
from tempo.memory.retention import trim_oldest


def _later(record, seconds: float):
    """The record moved `seconds` later in time (a source that went silent before it)."""
    return dataclasses.replace(
        record,
        start=record.start + seconds,
        end=record.end + seconds,
        timestamps=record.timestamps + seconds,
    )


def test_a_segment_starting_after_the_previous_one_ended_records_a_gap(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("cam", i) for i in range(2)])  # [0, 8) s
    # Segment 2 starts at 14 s: 6 s without video. Its index follows on; the gap is in time.
    results = store.put_segments([_later(records.make_record("cam", i), 6.0) for i in (2, 3)])
    assert [r.status for r in results] == [CommitStatus.COMMITTED] * 2
    assert store.gaps("cam") == [Gap(8.0, 14.0)]
    info = store.stream_info("cam")
    assert (info.segments, info.start, info.end) == (4, 0.0, 22.0)
    summary = info.summary(store.gaps("cam"))
    assert summary["gaps"] == [{"start": 8.0, "end": 14.0}] and summary["gap_seconds"] == 6.0
    assert Gap(8.0, 14.0).describe() == "no video from 8.0 s to 14.0 s"
    # Scoped queries see the gap only where it overlaps.
    assert store.gaps("cam", 0.0, 8.0) == [] and store.gaps("cam", 13.0, 30.0) == [Gap(8.0, 14.0)]
    assert store.gaps("cam", 14.0, 30.0) == []


def test_retention_drops_the_gaps_before_the_oldest_kept_segment(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("cam", i) for i in range(2)])
    store.put_segments([_later(records.make_record("cam", i), 6.0) for i in (2, 3)])
    assert trim_oldest(store, "cam", 1) == 1
    assert store.gaps("cam") == [Gap(8.0, 14.0)]  # still between kept segments 1 and 2
    assert trim_oldest(store, "cam", 1) == 1
    assert store.gaps("cam") == []  # segment 2 is the oldest now: nothing before it to miss
    store.delete_stream("cam")
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    assert store.gaps("cam") == []


def test_the_resume_slot_follows_the_last_committed_segments_window(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    assert store.stream_info("cam").resume_slot == 0
    store.put_segments([records.make_record("cam", 0)])
    # Segment 1 begins at slot 27 (grid window 3: the video was silent through windows 1 and 2).
    late = dataclasses.replace(_later(records.make_record("cam", 1), 8.0), first_frame_index=27)
    store.put_segments([late])
    info = store.stream_info("cam")
    assert (info.next_index, info.last_slot, info.resume_slot) == (2, 27, 32)


def test_a_second_writer_is_refused_while_the_lease_is_held(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    token = store.acquire_writer("cam", 30.0)
    with pytest.raises(StreamBusyError, match="being ingested by another process"):
        store.acquire_writer("cam", 30.0)
    # A commit without the lease, or with someone else's, writes nothing.
    with pytest.raises(StreamBusyError):
        store.put_segment(records.make_record("cam", 0))
    refused = store.put_segments([records.make_record("cam", 0)], lease="not-the-token")
    assert refused[0].status is CommitStatus.NOT_WRITER
    assert store.stream_info("cam").committed == -1
    assert store.put_segments([records.make_record("cam", 0)], lease=token)[0].status is CommitStatus.COMMITTED
    store.release_writer("cam", token)
    assert store.put_segment(records.make_record("cam", 1)).status is CommitStatus.COMMITTED


def test_an_expired_lease_lets_the_next_writer_in_and_fences_the_old_one(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    old = store.acquire_writer("cam", 0.3)
    time.sleep(0.5)  # the old writer died without releasing it
    new = store.acquire_writer("cam", 30.0)
    assert not store.renew_writer("cam", old, 30.0)
    assert store.put_segments([records.make_record("cam", 0)], lease=old)[0].status is CommitStatus.NOT_WRITER
    assert store.put_segments([records.make_record("cam", 0)], lease=new)[0].status is CommitStatus.COMMITTED
    assert store.renew_writer("cam", new, 30.0)


@contextlib.contextmanager
def _tiny_filesystem(path: Path) -> Iterator[bool]:
    """A 1 MiB tmpfs at `path` (CI runs as root); False where mounting is not permitted."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _server_whose_directory_is_gone(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """No mount permitted: a server whose data directory was removed, so its next snapshot fails,
    after which Redis refuses every write with MISCONF, as it does after a failed AOF write."""
    (tmp_path / "gone").mkdir()
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path / "gone"),
         "--appendonly", "no", "--save", "3600 1", "--stop-writes-on-bgsave-error", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    deadline = time.monotonic() + 20
    while not sock.exists() or not redis.Redis.from_url(url).ping():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.rmdir(tmp_path / "gone")
    client = redis.Redis.from_url(url)
    client.bgsave()
    while client.info("persistence")["rdb_last_bgsave_status"] == "ok":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, url


def test_a_full_disk_is_reported_as_a_full_disk(tmp_path: Path, records) -> None:
    with _tiny_filesystem(tmp_path / "disk") as mounted:
        if mounted:  # a real full disk: the AOF write fails with ENOSPC
            proc, url = spawn_redis_server(tmp_path / "disk")
        else:
            proc, url = _server_whose_directory_is_gone(tmp_path)
        try:
            store = RedisMemoryStore(redis.Redis.from_url(url))
            with pytest.raises(MemoryUnavailableError) as failure:
                store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
                for lo in range(0, 4000, 50):  # ~1 KB of AOF each: 4 MB, far more than the disk holds
                    store.put_segments([records.make_record("cam", i, seed=i) for i in range(lo, lo + 50)])
            message = str(failure.value)
            assert message.startswith("Redis cannot write to its disk (it is full or failing)")
            assert "lost the connection" not in message
        finally:
            proc.kill()
            proc.wait(timeout=10)
