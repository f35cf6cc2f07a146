"""Ingest jobs of `tempo serve`: start, progress, stop, delete; definitions kept in Redis.

A job ingests one source into one stream in a background thread, through `TempoService.ingest`, in
chunks of `chunk_segments` segments: ingest resumes after the stream's last committed segment, so a
chunk boundary is where a stop request takes effect and where progress is written. A file job ends
when its source is exhausted. A network (camera) job is live: when its source drops or fails it is
retried with exponential backoff (1 s, 2 s, 4 s … 60 s) until stopped. Job definitions live in Redis
(`{prefix}:job:{id}`), so a restarted server starts again every job that was running or retrying.
The source URL (credentials included) stays in Redis; responses show it without user:password.

Speech: a job asked with `"asr": true` also transcribes the source's audio track with the server's
Whisper checkpoint (`tempo serve --asr DIR|HUB_ID`, the same as `tempo ingest --asr`); a client only
switches it on, never names a checkpoint or a path. Refused in one sentence (422) where the server has
no `--asr`, or for a file without an audio stream.

Routes (`register_job_routes`): POST /v1/streams/{stream}/ingest (202; the source checked by
tempo.tools.server_sources), GET /v1/jobs, GET/DELETE /v1/jobs/{id}, POST /v1/jobs/{id}/stop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI
from pydantic import Field, StrictBool
from tempo import inputs
from tempo.agent.monitoring.ingest import monitored_ingest
from tempo.errors import InvalidInputError, TempoError, redact_url
from tempo.memory.errors import StreamBusyError
from tempo.tools.errors import JobNotFoundError
from tempo.tools.server_sources import check_source, job_error

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer

log = logging.getLogger(__name__)

ACTIVE = ("running", "retrying")
MAX_BACKOFF_S = 60.0


class IngestJobs:
    def __init__(
        self, service: Any, *, chunk_segments: int = 8, file_retries: int = 2, asr: str | None = None
    ) -> None:
        self.service = service
        self.asr = asr  # the server's Whisper checkpoint (`tempo serve --asr`) for jobs asked with "asr"
        self.chunk_segments = chunk_segments
        self.file_retries = file_retries
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._lock = threading.RLock()  # start() launches under it

    # ----- Redis -----------------------------------------------------------------------------------
    @property
    def _redis(self) -> Any:
        return self.service.store.client

    def _key(self, job_id: str) -> str:
        return f"{self.service.store.prefix}:job:{job_id}"

    @property
    def _index(self) -> str:
        return f"{self.service.store.prefix}:jobs"

    def _save(self, job_id: str, **fields: Any) -> None:
        self._redis.hset(self._key(job_id), mapping={k: str(v) for k, v in {**fields, "updated": time.time()}.items()})

    def _load(self, job_id: str) -> dict[str, str]:
        raw = self._redis.hgetall(self._key(job_id))
        if not raw:
            raise JobNotFoundError(f"no ingest job {job_id!r}")
        return {k.decode(): v.decode() for k, v in raw.items()}

    def _public(self, raw: dict[str, str]) -> dict[str, Any]:
        return {
            "id": raw["id"],
            "stream": raw["stream"],
            "source": redact_url(raw["source"]),
            "live": raw.get("live") == "1",
            "asr": raw.get("asr") == "1",
            "state": raw["state"],
            "segments": int(raw.get("segments", 0)),
            "attempts": int(raw.get("attempts", 0)),
            "error": raw.get("error") or None,
            "created": float(raw["created"]),
            "updated": float(raw["updated"]),
        }

    # ----- API -------------------------------------------------------------------------------------
    def check_asr(self, source: str) -> None:
        """InvalidInputError (one sentence) where a job cannot transcribe `source`: the server has no
        speech recognizer, or the file has no audio stream (NoAudioStreamError)."""
        if self.asr is None:
            raise InvalidInputError(
                "this server transcribes no speech: start `tempo serve` with --asr DIR|HUB_ID to ingest with \"asr\""
            )
        if "://" not in source:
            from tempo.streaming.audio import FileAudio

            FileAudio(source).close()

    def start(self, stream: str, source: str, *, asr: bool = False) -> dict[str, Any]:
        if asr:
            self.check_asr(source)
        with self._lock:
            for job in self.list():
                if job["stream"] == stream and job["state"] in ACTIVE:
                    raise StreamBusyError(f"the stream {stream!r} is already being ingested by job {job['id']}")
            job_id = uuid.uuid4().hex[:12]
            live = "://" in source
            self._save(
                job_id,
                id=job_id,
                stream=stream,
                source=source,
                live=int(live),
                asr=int(asr),
                state="running",
                segments=0,
                attempts=0,
                error="",
                created=time.time(),
            )
            self._redis.sadd(self._index, job_id)
            self._launch(job_id)
        return self.get(job_id)

    def list(self) -> list[dict[str, Any]]:
        jobs = []
        for raw_id in self._redis.smembers(self._index):
            try:
                jobs.append(self._public(self._load(raw_id.decode())))
            except JobNotFoundError:
                continue
        return sorted(jobs, key=lambda j: j["created"])

    def get(self, job_id: str) -> dict[str, Any]:
        return self._public(self._load(job_id))

    def stop(self, job_id: str, *, wait: float = 0.0) -> dict[str, Any]:
        raw = self._load(job_id)
        with self._lock:
            entry = self._threads.get(job_id)
        if entry is not None:
            entry[1].set()
            entry[0].join(timeout=wait)
        if raw["state"] in ACTIVE:
            self._save(job_id, state="stopped")
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        self.stop(job_id, wait=30.0)
        self._redis.delete(self._key(job_id))
        self._redis.srem(self._index, job_id)

    def resume(self) -> list[str]:
        """Start again the jobs Redis says were running (after a server restart)."""
        resumed = []
        for job in self.list():
            if job["state"] in ACTIVE:
                self._launch(job["id"])
                resumed.append(job["id"])
        return resumed

    def shutdown(self, wait: float = 10.0) -> None:
        """Stop the threads (the jobs stay active in Redis: a restarted server resumes them)."""
        with self._lock:
            entries = list(self._threads.values())
        for _, event in entries:
            event.set()
        for thread, _ in entries:
            thread.join(timeout=wait)

    # ----- the worker --------------------------------------------------------------------------------
    def _launch(self, job_id: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(job_id, stop), name=f"ingest-{job_id}", daemon=True)
        with self._lock:
            self._threads[job_id] = (thread, stop)
        thread.start()

    def _run(self, job_id: str, stop: threading.Event) -> None:
        raw = self._load(job_id)
        stream, source, live = raw["stream"], raw["source"], raw.get("live") == "1"
        speech = {"asr": self.asr} if raw.get("asr") == "1" else {}
        failures = 0
        try:
            if raw.get("asr") == "1" and self.asr is None:  # resumed by a server started without --asr
                self._save(job_id, state="failed", error="this server transcribes no speech (start it with --asr)")
                return
            while not stop.is_set():
                try:
                    report = monitored_ingest(
                        self.service, source, stream, progress=False, max_segments=self.chunk_segments, **speech
                    )
                except TempoError as exc:
                    failures += 1
                    message = job_error(exc, source)
                    if not live and failures > self.file_retries:
                        self._save(job_id, state="failed", error=message, attempts=failures)
                        return
                    self._save(job_id, state="retrying", error=message, attempts=failures)
                    stop.wait(min(MAX_BACKOFF_S, 2.0 ** (failures - 1)))
                    continue
                except Exception as exc:  # a bug: record it rather than lose the thread silently
                    log.exception("ingest job %s failed", job_id)
                    self._save(job_id, state="failed", error=f"internal error ({exc.__class__.__name__})")
                    return
                failures = 0
                segments = self.service.stream(stream).segments
                self._save(job_id, state="running", error="", segments=segments, attempts=0)
                if report.committed < self.chunk_segments and not report.interrupted:
                    if not live:
                        self._save(job_id, state="done", segments=segments)
                        return
                    # A live source that ended: the camera dropped; try again after a pause.
                    self._save(job_id, state="retrying", error="the source ended; reconnecting")
                    stop.wait(1.0)
        finally:
            with self._lock:
                entry = self._threads.get(job_id)
                if entry is not None and entry[1] is stop:
                    self._threads.pop(job_id, None)


# ----- routes ---------------------------------------------------------------------------------------


class IngestRequest(inputs.StrictInput):
    source: inputs.Name = Field(description="A file under the media root, or a camera URL.")
    asr: StrictBool = Field(
        default=False,
        description="Also transcribe the source's audio track with the server's Whisper checkpoint "
        "(`tempo serve --asr`); each segment keeps the speech cues that overlap it.",
    )


def register_job_routes(app: FastAPI, server: TempoServer) -> None:
    """Ingest job routes over `server.jobs`; sources checked against `server.settings`' policy."""
    settings = server.settings

    @app.post("/v1/streams/{stream}/ingest", status_code=202, tags=["jobs"])
    async def start_ingest(stream: str, body: IngestRequest) -> dict[str, Any]:
        from tempo.memory.store import RedisMemoryStore

        RedisMemoryStore.check_name(stream)
        source = await anyio.to_thread.run_sync(
            lambda: check_source(
                body.source, media_root=settings.media_root, deny_private_networks=settings.deny_private_networks
            )
        )
        return await anyio.to_thread.run_sync(lambda: server.jobs.start(stream, source, asr=body.asr))

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs() -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(server.jobs.list)

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def show_job(job_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.jobs.get, job_id)

    @app.post("/v1/jobs/{job_id}/stop", tags=["jobs"])
    async def stop_job(job_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(lambda: server.jobs.stop(job_id, wait=30.0))

    @app.delete("/v1/jobs/{job_id}", status_code=204, tags=["jobs"])
    async def delete_job(job_id: str) -> None:
        await anyio.to_thread.run_sync(server.jobs.delete, job_id)
