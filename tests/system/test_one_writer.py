"""One writer per stream, and no empty stream left by an ingest that stored nothing: `tempo ingest`
as a subprocess against the test Redis."""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tempo.memory import RedisMemoryStore
from tempo.memory.errors import StreamBusyError
from tempo.streaming.synthetic import RealTimePublisher, write_mpegts

sys.path.insert(0, str(Path(__file__).parent))

LEASE = 3.0  # seconds: the writer lease the subprocesses run with ($TEMPO_WRITER_LEASE)


def _start_ingest(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tempo.tools.cli", "ingest", *args],
        env={**env, "TEMPO_WRITER_LEASE": str(LEASE)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"ingest exited {proc.returncode} early: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_ingest_of_a_stream_is_refused_and_a_killed_writer_blocks_only_until_its_lease_expires(
    tmp_path: Path, tempo_env: dict[str, str], redis_url: str,
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    ts = write_mpegts(tmp_path / "camera.ts", duration=8.0, fps=30.0, keyint=15, size=(192, 112))
    # A camera sending at real time that freezes after 4.8 s: the first ingest is still running.
    camera = RealTimePublisher(ts.read_bytes(), 8.0, pause=120.0, pause_at=0.6)
    url = f"tcp://127.0.0.1:{camera.port}"
    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    first = _start_ingest(tempo_env, url, "--stream", "gate", "--batch-size", "1")
    try:
        _wait_for(lambda: "gate" in store.stream_names() and store.stream_info("gate").committed >= 0, first)
        second = tempo_cli("ingest", url, "--stream", "gate", "--lease-wait", "0", check=False)
        assert second.returncode != 0
        (line,) = second.stderr.strip().splitlines()[-1:]
        assert re.fullmatch(
            r"tempo: error: stream 'gate' is being ingested by another process \(its writer lease is held\); "
            r"wait for that ingest to finish, or for its lease to expire \(within (\d+\.\d) s\) if it died",
            line,
        )
        assert first.poll() is None  # the refused ingest did not disturb the running one
        # Else it waits, counting down (by default for one lease period); the live writer keeps it.
        waited = tempo_cli("ingest", url, "--stream", "gate", "--lease-wait", "2", check=False)
        assert waited.returncode == 2
        assert f"writer lease, held by pid {first.pid} on this host" in waited.stderr
        assert waited.stderr.strip().splitlines()[-1] == (
            f"tempo: error: stream 'gate' is being ingested by another process (pid {first.pid} on this host), "
            "and its writer lease was still held after waiting 2.0 s; wait for that ingest to finish, "
            "or run again with a longer --lease-wait")
        assert first.poll() is None
        first.send_signal(signal.SIGKILL)  # a crash: the lease is not released
        first.wait(timeout=30)
        killed_at = time.monotonic()
        with pytest.raises(StreamBusyError):
            store.acquire_writer("gate", LEASE)
    finally:
        if first.poll() is None:
            first.kill()
        camera.close()
    committed = store.stream_info("gate").committed
    # The lease runs out on its own within LEASE seconds of the crash ...
    while True:
        try:
            token = store.acquire_writer("gate", LEASE)
            break
        except StreamBusyError:
            assert time.monotonic() - killed_at < LEASE + 1.0
            time.sleep(0.1)
    store.release_writer("gate", token)
    # ... and the camera's next ingest carries on where the killed one stopped.
    again = RealTimePublisher(ts.read_bytes(), 8.0, port=camera.port)
    try:
        third = tempo_cli("ingest", url, "--stream", "gate", "--max-segments", "1", "--json")
    finally:
        again.close()
    report = json.loads(third.stdout)
    assert report["resumed_from"] == committed + 1 and report["last_committed"] == committed + 1
    assert redis.Redis.from_url(redis_url).exists("tempo:s:{gate}:writer") == 0  # released at the end


def test_an_ingest_interrupted_before_its_first_segment_leaves_no_stream(
    tmp_path: Path, tempo_env: dict[str, str], redis_url: str,
) -> None:
    ts = write_mpegts(tmp_path / "camera.ts", duration=8.0, fps=30.0, keyint=15, size=(192, 112))
    # Real time, and a long stall right away: no segment can be complete when Ctrl-C comes.
    publisher = RealTimePublisher(ts.read_bytes(), 8.0, pause=20.0, pause_at=0.05)
    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    proc = _start_ingest(tempo_env, f"tcp://127.0.0.1:{publisher.port}", "--stream", "gate")
    try:
        _wait_for(lambda: "gate" in store.stream_names(), proc)
        assert store.stream_info("gate").committed == -1
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        publisher.close()
    assert proc.returncode == 130
    assert store.stream_names() == []
    assert [k for k in redis.Redis.from_url(redis_url).keys("tempo:s:*")] == []


def test_a_writer_that_loses_its_lease_stops_and_counts_only_what_was_committed(
    video_20s: Path, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    from tempo.engine.ingest import ingest
    from tempo.service import TempoService
    from tempo.streaming import SamplingConfig

    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    client = redis.Redis.from_url(redis_url)

    def steal_the_lease(records: list) -> None:  # another writer takes over after the first commit
        client.set("tempo:s:{yard}:writer", "someone-else")

    with pytest.raises(StreamBusyError, match="being ingested by another process"):
        ingest(str(video_20s), "yard", model=service.model, embedder=service.embedder, store=service.store,
               model_id=service.model_name, sampling=SamplingConfig(max_edge=128), batch_size=1,
               progress=False, on_commit=steal_the_lease)
    info = service.store.stream_info("yard")
    assert info.committed == 0  # the refused segments were neither written nor skipped over
    assert client.get("tempo:s:{yard}:writer") == b"someone-else"  # not ours to release


def test_an_ingest_killed_and_run_again_at_once_resumes_with_nothing_lost_or_twice(
    video_120s: Path, tempo_env: dict[str, str], redis_url: str,
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A supervisor restarting a crashed ingest at once: the dead holder's lease (60 s here) is taken over."""
    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    env = {**tempo_env, "TEMPO_WRITER_LEASE": "60"}
    first = subprocess.Popen([sys.executable, "-m", "tempo.tools.cli", "ingest", str(video_120s), "--stream", "yard",
                              "--batch-size", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_for(lambda: "yard" in store.stream_names() and store.stream_info("yard").committed >= 2, first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    killed = store.stream_info("yard").committed
    assert killed < 29, "the first ingest finished before the kill"
    t0 = time.monotonic()
    again = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "ingest", str(video_120s), "--stream", "yard",
                            "--json"], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr[-2000:]
    assert time.monotonic() - t0 < 60.0
    assert f"took over the writer lease of pid {first.pid} on this host, which is no longer running" in again.stderr
    report = json.loads(again.stdout)
    assert report["resumed_from"] == killed + 1 and report["last_committed"] == 29
    segments = store.segments_in_time_range("yard", 0.0, 1e9)
    assert [s.index for s in segments] == list(range(30))  # none lost, none twice
    assert all(a.end == b.start for a, b in itertools.pairwise(segments))
    assert store.gaps("yard") == []
    assert redis.Redis.from_url(redis_url).exists("tempo:s:{yard}:writer", "tempo:s:{yard}:writer:holder") == 0
