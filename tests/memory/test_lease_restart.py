"""The writer lease names its holder: a provably dead holder on this host is taken over at once,
a live one or one on another host is waited for (--lease-wait), and only one of two takeovers wins."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tempo.memory import RedisMemoryStore
from tempo.memory.errors import StreamBusyError
from tempo.memory.holder import Holder, host_id, process_start
from tempo.memory.lease import WriterLease, holder_key


def _store(url: str) -> RedisMemoryStore:
    return RedisMemoryStore.connect(url)


def _plant(store: RedisMemoryStore, stream: str, holder: Holder, ms: int = 60_000) -> None:
    """A lease as another process left it: the token and its holder, `ms` milliseconds to live."""
    store.client.set(store.keys.writer(stream), holder.token, px=ms)
    store.client.set(holder_key(store, stream), holder.to_json(), px=ms)


def _dead_process() -> tuple[int, str]:
    """The pid and start time of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, started


def test_a_dead_holder_on_this_host_is_taken_over_at_once_with_one_line(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(redis_url)
    pid, started = _dead_process()
    dead = Holder(token="t-dead", host=host_id(), boot=Holder.me("x").boot, pid=pid, started=started)
    _plant(store, "cam", dead)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tempo.memory.lease"):
        lease = WriterLease(store, "cam", 30.0, wait=20.0, progress=False)
    try:
        assert time.monotonic() - t0 < 2.0  # not one lease period
        assert lease.took_over == dead
        assert store.client.get(store.keys.writer("cam")).decode() == lease.token
        assert Holder.from_json(store.client.get(holder_key(store, "cam"))) == Holder.me(lease.token)
        notices = [r.getMessage() for r in caplog.records]
        assert notices == [f"stream 'cam': took over the writer lease of pid {pid} on this host, "
                           "which is no longer running"]
    finally:
        lease.release()
    assert store.client.exists(store.keys.writer("cam"), holder_key(store, "cam")) == 0


def test_a_reused_pid_is_not_the_holder() -> None:
    """The holder's pid now runs another process (another start time): the holder is gone."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = Holder(token="t", host=host_id(), boot=Holder.me("x").boot, pid=sleeper.pid, started="1")
        assert holder.provably_dead()
        alive = Holder(token="t", host=host_id(), boot=Holder.me("x").boot, pid=sleeper.pid,
                       started=process_start(sleeper.pid))
        assert not alive.provably_dead()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_live_holder_is_waited_for_then_refused_in_one_sentence(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(redis_url)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = Holder(token="t-live", host=host_id(), boot=Holder.me("x").boot, pid=sleeper.pid,
                       started=process_start(sleeper.pid))
        _plant(store, "cam", alive)
        with pytest.raises(StreamBusyError, match="being ingested by another process") as refused:
            WriterLease(store, "cam", 30.0, wait=0, progress=True)
        assert "(within " in str(refused.value)  # --lease-wait 0: today's immediate refusal
        t0 = time.monotonic()
        with pytest.raises(StreamBusyError) as waited:
            WriterLease(store, "cam", 30.0, wait=1.2, progress=True)
        assert 1.2 <= time.monotonic() - t0 < 5.0
        assert str(waited.value) == (
            f"stream 'cam' is being ingested by another process (pid {sleeper.pid} on this host), and its "
            "writer lease was still held after waiting 1.2 s; wait for that ingest to finish, or run again "
            "with a longer --lease-wait")
        assert "\n" not in str(waited.value)
        assert "writer lease, held by pid" in capsys.readouterr().err  # the countdown
        assert store.client.get(store.keys.writer("cam")) == b"t-live"  # untouched
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_holder_on_another_host_is_waited_for_until_its_lease_expires(redis_url: str) -> None:
    store = _store(redis_url)
    pid, started = _dead_process()  # dead here, but the pid was another host's: nothing can be proved
    remote = Holder(token="t-remote", host="0123456789abcdef", boot="b", pid=pid, started=started, hostname="cam-2")
    assert not remote.provably_dead()
    _plant(store, "cam", remote, ms=1500)
    with pytest.raises(StreamBusyError, match=r"\(pid \d+ on host 'cam-2'\)"):
        WriterLease(store, "cam", 30.0, wait=0.5, progress=False)
    t0 = time.monotonic()
    lease = WriterLease(store, "cam", 30.0, wait=10.0, progress=False)  # waits for the expiry
    try:
        assert 0.3 < time.monotonic() - t0 < 5.0
        assert lease.took_over is None
    finally:
        lease.release()


def test_a_lease_without_a_holder_or_with_a_stale_one_is_waited_for(redis_url: str) -> None:
    """An older writer (no holder key), or a holder key of an earlier token: nothing proves it dead."""
    store = _store(redis_url)
    pid, started = _dead_process()
    store.client.set(store.keys.writer("cam"), "legacy", px=60_000)
    with pytest.raises(StreamBusyError):
        WriterLease(store, "cam", 30.0, wait=0.3, progress=False)
    stale = Holder(token="earlier", host=host_id(), boot=Holder.me("x").boot, pid=pid, started=started)
    store.client.set(holder_key(store, "cam"), stale.to_json(), px=60_000)
    with pytest.raises(StreamBusyError):
        WriterLease(store, "cam", 30.0, wait=0.3, progress=False)
    assert store.client.get(store.keys.writer("cam")) == b"legacy"


def test_of_two_runs_restarted_together_only_one_takes_the_lease(redis_url: str) -> None:
    store = _store(redis_url)
    pid, started = _dead_process()
    _plant(store, "cam", Holder(token="q", host=host_id(), boot=Holder.me("x").boot, pid=pid, started=started))
    results: list[object] = []
    barrier = threading.Barrier(4)

    def contend() -> None:
        barrier.wait()
        try:  # a queue producer run again: the same token as the dead one's jobs
            results.append(WriterLease(_store(redis_url), "cam", 30.0, token="q", wait=0, progress=False))
        except StreamBusyError as exc:
            results.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if isinstance(r, WriterLease)]
    assert len(won) == 1 and len(results) == 4
    assert Holder.from_json(store.client.get(holder_key(store, "cam"))).pid == os.getpid()
    won[0].release()


def test_the_renewal_keeps_the_holder_beside_the_lease(redis_url: str) -> None:
    store = _store(redis_url)
    lease = WriterLease(store, "cam", 0.9, progress=False)
    try:
        time.sleep(2.0)  # several renewals, each extending both keys
        assert store.client.get(store.keys.writer("cam")).decode() == lease.token
        assert Holder.from_json(store.client.get(holder_key(store, "cam"))).token == lease.token
    finally:
        lease.release()


def test_a_queue_producer_run_again_after_kill_takes_its_dead_lease_over(redis_url: str, tmp_path: Path) -> None:
    """`tempo ingest --queue` killed with -9 and run again at once: it takes the lease over under the
    token its queued jobs carry, and queues on from where the killed one stopped."""
    from tempo.engine.producer import produce
    from tempo.memory.jobqueue import JobQueue, JobSpec
    from tempo.streaming import SamplingConfig
    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(tmp_path / "v.mp4", duration=12.0, size=(96, 64))
    store = _store(redis_url)
    queue = JobQueue.for_store(store)
    spec = JobSpec(sampling=SamplingConfig())
    assert produce(str(video), "cam", queue=queue, store=store, spec=spec, max_segments=1).queued == 1
    token = queue.state("cam")["lease"]
    pid, started = _dead_process()  # as the killed producer left the lease: held under the jobs' token
    _plant(store, "cam", Holder(token=token, host=host_id(), boot=Holder.me("x").boot, pid=pid, started=started))
    t0 = time.monotonic()
    again = produce(str(video), "cam", queue=queue, store=store, spec=spec, lease_seconds=60.0, progress=False)
    assert time.monotonic() - t0 < 30.0
    assert (again.resumed_from, again.queued) == (1, 2)
    jobs = queue.read("w", 10, ["cam"], block=0.1)
    assert [j.index for j in jobs] == [0, 1, 2] and {j.spec.lease for j in jobs} == {token}
    assert store.client.exists(store.keys.writer("cam")) == 0
