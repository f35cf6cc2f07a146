"""`tempo serve` killed with -9 mid-ingest and started again: its file job resumes and finishes,
taking over the writer lease the dead server process left (instead of failing on it for good)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tempo.memory.holder import Holder, host_id, process_start
from tempo.memory.lease import holder_key
from tempo.service import TempoService
from tempo.tools.server_jobs import IngestJobs


def test_a_resumed_file_job_takes_over_the_dead_servers_lease(
    video_20s: Path, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    store, client = service.store, service.store.client
    # What the killed server left: its job "running" in Redis, and the stream's lease held by its pid.
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(dead.pid)
    dead.kill()
    dead.wait()
    holder = Holder(token="dead-server", host=host_id(), boot=Holder.me("x").boot, pid=dead.pid, started=started)
    client.set(store.keys.writer("yard"), holder.token, px=60_000)
    client.set(holder_key(store, "yard"), holder.to_json(), px=60_000)
    client.hset(f"{store.prefix}:job:j1", mapping={
        "id": "j1", "stream": "yard", "source": str(video_20s), "live": "0", "state": "running",
        "segments": "0", "attempts": "0", "error": "", "created": str(time.time()), "updated": str(time.time()),
    })
    client.sadd(f"{store.prefix}:jobs", "j1")

    jobs = IngestJobs(service, chunk_segments=2)
    assert jobs.resume() == ["j1"]
    deadline = time.monotonic() + 240
    while jobs.get("j1")["state"] in ("running", "retrying"):
        assert time.monotonic() < deadline, jobs.get("j1")
        time.sleep(0.2)
    job = jobs.get("j1")
    assert (job["state"], job["error"], job["segments"]) == ("done", None, 5)
    assert [s.index for s in store.segments_in_time_range("yard", 0.0, 1e9)] == [0, 1, 2, 3, 4]
    assert client.exists(store.keys.writer("yard")) == 0
