"""A real memory for the agent and tool tests: its own redis-server, the tiny checkpoint, one stream.

Built once per test session by the `live_memory` fixture of tests/conftest.py (which loads this file
by path: the test folders are not packages). It uses its own Redis server because the shared one of
tests/conftest.py is flushed before every test that asks for `redis_url`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

STREAM = "cam"
VIDEO_SECONDS = 40.0
MAX_NEW_TOKENS = 12  # short answers keep every turn under a second with the tiny model


@dataclass
class LiveMemory:
    root: Path
    url: str  # unix://... of the private redis-server
    model_dir: Path
    stream: str = STREAM
    duration: float = VIDEO_SECONDS
    process: subprocess.Popen | None = field(default=None, repr=False)

    def service(self):  # -> TempoService (imported lazily: torch)
        from tempo.service import TempoService

        return TempoService(model=str(self.model_dir), redis_url=self.url, home=self.root / "home")

    def env(self) -> dict[str, str]:
        """Environment for `tempo` subprocesses on this memory."""
        return {
            **os.environ,
            "TEMPO_HOME": str(self.root / "home"),
            "TEMPO_REDIS_URL": self.url,
            "TEMPO_MODEL": str(self.model_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def cli(self, *args: str) -> list[str]:
        """argv of the `tempo` command with the memory's model options and short answers."""
        return [sys.executable, "-m", "tempo.tools.cli", *args]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_live_memory(root: Path) -> LiveMemory:
    from tempo.memory.embedded import spawn_redis_server
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.service import TempoService
    from tempo.streaming.synthetic import write_test_video

    proc, url = spawn_redis_server(root, appendonly=False)
    model_dir = write_tiny_checkpoint(root / "tiny")
    video = root / "cam.mp4"
    write_test_video(video, duration=VIDEO_SECONDS, fps=30, size=(320, 192))
    TempoService(model=str(model_dir), redis_url=url, home=root / "home").ingest(str(video), STREAM, progress=False)
    return LiveMemory(root=root, url=url, model_dir=Path(model_dir), process=proc)


def add_live_stream(
    service, name: str, *, segments: int = 6, wallclock0: float | None = 1_700_000_000.0, step: float = 4.0
) -> None:
    """A live-style stream written as records (proxy clips, wall-clock starts unless `wallclock0` is
    None), as a live ingest leaves it: its query-aware pass decodes the proxies since there is no file
    to re-read. Segment i covers [step·i, step·i + step)."""
    import numpy as np
    from tempo.engine.ingest import stream_settings
    from tempo.memory.proxy import encode_proxy
    from tempo.memory.records import SegmentRecord
    from tempo.streaming import SamplingConfig
    from tempo.streaming.segment import SourceInfo

    model, embedder = service.model, service.embedder
    settings = stream_settings(model, embedder, SamplingConfig(fps=2.0, window=8), model_id=service.model_name)
    service.store.create_stream(name, SourceInfo(uri="rtsp://test.invalid/cam", kind="network", live=True), settings)
    rng = np.random.default_rng(7)
    records = []
    for i in range(segments):
        frames = np.zeros((8, 64, 96, 3), dtype=np.uint8)  # (T, H, W, 3): a square moving right
        for t in range(8):
            frames[t, 20:40, 4 * t + 10 * i : 4 * t + 10 * i + 20] = (200, 40, 40)
        emb = rng.normal(size=settings.embedding_dim).astype(np.float32)
        records.append(
            SegmentRecord(
                stream=name,
                index=i,
                start=step * i,
                end=step * i + step,
                timestamps=step * i + np.arange(8) * 0.5,
                frame_size=(64, 96),
                first_frame_index=8 * i,
                wallclock_start=None if wallclock0 is None else wallclock0 + step * i,
                tokens=rng.normal(size=(settings.stored_tokens, settings.token_dim)).astype(np.float32),
                embedding=emb / np.linalg.norm(emb),
                proxy=encode_proxy(frames),
            )
        )
    service.store.put_segments(records)
    service.index.sync()
