"""A stream's file source that changed after ingest is refused, never read as if it were the same:
replaced by another video of the same length, or turned into a FIFO."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tempo.agent.conversations import Conversations
from tempo.memory.errors import SourceChangedError
from tempo.service import TempoService
from tempo.settings import AskSettings
from tempo.streaming import SamplingConfig
from tempo.streaming.errors import NotMediaError
from tempo.streaming.synthetic import write_test_video

SAMPLING = SamplingConfig(max_edge=128)



def _ask(service: TempoService) -> object:
    return Conversations(service).ask_once("yard", "What moves?", settings=AskSettings(top_k=8, max_new_tokens=2))

@pytest.fixture()
def ingested(tmp_path: Path, redis_url: str, tiny_checkpoint: Path) -> tuple[TempoService, Path]:
    clip = write_test_video(tmp_path / "clip.mp4", duration=12.0, size=(192, 112))
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path / "home")
    service.ingest(str(clip), "yard", sampling=SAMPLING, progress=False)
    return service, clip


def test_a_file_replaced_by_another_video_of_the_same_length_is_refused(
    ingested: tuple[TempoService, Path], tmp_path: Path,
    tempo_cli: Callable[..., Any],
) -> None:
    service, clip = ingested
    other = write_test_video(tmp_path / "other.mp4", duration=12.0, size=(192, 112), texture=True, seed=5)
    shutil.copyfile(other, clip)
    expected = (f"{clip} has changed since stream 'yard' was ingested from it (size, modification time, "
                "content differ); re-ingest it under a new stream name")
    with pytest.raises(SourceChangedError) as asked:
        _ask(service)
    assert str(asked.value) == expected
    with pytest.raises(SourceChangedError) as resumed:
        service.ingest(str(clip), "yard", sampling=SAMPLING, progress=False)
    assert str(resumed.value) == expected
    proc = tempo_cli("ingest", str(clip), "--stream", "yard", "--max-edge", "128", check=False)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1] == f"tempo: error: {expected}"
    assert service.stream("yard").segments == 3  # nothing of the new video was stored


def test_a_stored_source_path_that_became_a_fifo_fails_the_question_at_once(
    ingested: tuple[TempoService, Path], finishes_within,
) -> None:
    service, clip = ingested
    clip.unlink()
    os.mkfifo(clip)
    try:
        error = finishes_within(20.0, lambda: _ask(service))
    finally:
        with contextlib.suppress(OSError):  # release a reader still waiting on the FIFO (a failing run)
            os.close(os.open(clip, os.O_WRONLY | os.O_NONBLOCK))
    assert isinstance(error, NotMediaError)
    assert "it is a named pipe (FIFO), not a regular file" in str(error)
