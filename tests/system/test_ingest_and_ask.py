"""Ingest once, ask many times, survive crashes: `tempo ingest` and `tempo ask --stream` end to end."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from tempo.memory.store import RedisMemoryStore
from tempo.streaming import iter_segments

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout.strip().splitlines()[-1])


QUESTION = "What colour is the screen at the start?"


def test_answer_from_memory_equals_reference_mode_when_the_stream_fits_top_k(
    tempo_cli: CliRunner, video_20s: Path
) -> None:
    # Memory samples on the stream grid (README: where memory mode differs from the paper); on that same
    # grid the reference method must give exactly what memory gives.
    reference = json_out(
        tempo_cli("ask", str(video_20s), QUESTION, "--sampling", "stream", "--json", "--max-new-tokens", "12")
    )
    tempo_cli("ingest", str(video_20s), "--stream", "clip", "--json")
    memory = json_out(
        tempo_cli("ask", "--stream", "clip", QUESTION, "--json", "--top-k", "8", "--max-new-tokens", "12")
    )
    assert len(reference["segments"]) == 5
    assert sorted(c["index"] for c in memory["candidates"]) == [0, 1, 2, 3, 4]
    assert set(memory) == set(reference)  # one TurnResult from memory and in reference mode
    assert (memory["stream"], reference["stream"], reference["source"]) == ("clip", None, str(video_20s))
    assert [s["tokens"] for s in memory["segments"]] == [s["tokens"] for s in reference["segments"]]
    assert [(s["start"], s["end"]) for s in memory["segments"]] == [
        (s["start"], s["end"]) for s in reference["segments"]
    ]
    for mine, ref in zip(memory["segments"], reference["segments"], strict=True):
        assert mine["relevance"] == pytest.approx(ref["relevance"], abs=1e-5)
    assert memory["avg_tokens_per_frame"] == pytest.approx(reference["avg_tokens_per_frame"])
    assert memory["answer"] == reference["answer"]


def test_second_identical_question_reuses_the_query_aware_pass(tempo_cli: CliRunner, video_20s: Path) -> None:
    tempo_cli("ingest", str(video_20s), "--stream", "clip")
    first = json_out(tempo_cli("ask", "--stream", "clip", QUESTION, "--json", "--max-new-tokens", "8"))
    second = json_out(tempo_cli("ask", "--stream", "clip", QUESTION, "--json", "--max-new-tokens", "8"))
    assert first["cache_hits"] == 0
    assert second["cache_hits"] == len(second["candidates"]) == 5
    assert second["answer"] == first["answer"]
    assert [s["tokens"] for s in second["segments"]] == [s["tokens"] for s in first["segments"]]


def test_long_stream_recompresses_only_candidates_and_anchors_the_rest(
    tempo_cli: CliRunner, video_120s: Path
) -> None:
    tempo_cli("ingest", str(video_120s), "--stream", "long")
    out = json_out(tempo_cli("ask", "--stream", "long", QUESTION, "--json", "--top-k", "3", "--max-new-tokens", "4"))
    segments = out["segments"]
    assert [s["index"] for s in segments] == list(range(30))  # the whole timeline is in the answer
    candidates = {c["index"] for c in out["candidates"]}
    assert 3 <= len(candidates) <= 9  # top-3 plus at most one neighbour on each side
    for s in segments:
        if s["index"] in candidates:
            assert s["kind"] == "candidate" and 0.0 <= s["relevance"] <= 1.0 and s["tokens"] >= 4
        else:
            assert s["kind"] == "anchor" and s["relevance"] is None and s["tokens"] == 4
    assert sum(s["tokens"] for s in segments) <= out["budget"]
    # Consecutive segments tile the timeline.
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in itertools.pairwise(segments))


def test_streams_lists_what_ingest_committed(tempo_cli: CliRunner, video_20s: Path) -> None:
    tempo_cli("ingest", str(video_20s), "--stream", "clip")
    listed = json_out(tempo_cli("streams", "--json"))["streams"]
    assert [(s["name"], s["segments"], s["start"]) for s in listed] == [("clip", 5, 0.0)]
    assert listed[0]["end"] == pytest.approx(20.0, abs=0.51)
    assert listed[0]["bytes"] > 0


def test_ingest_killed_mid_way_then_rerun_gives_exactly_every_segment(
    tempo_cli: CliRunner, tempo_env: dict[str, str], redis_url: str, video_120s: Path
) -> None:
    expected = [(s.index, s.start, s.end) for s in iter_segments(str(video_120s))]
    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    proc = subprocess.Popen(
        # Small batches so the kill lands between commits with work still to do.
        [sys.executable, "-m", "tempo.tools.cli", "ingest", str(video_120s), "--stream", "crash", "--batch-size", "2"],
        env={**tempo_env, "TEMPO_WRITER_LEASE": "2"},  # the killed writer's lease outlives it 2 s at most
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    committed = -1
    while time.monotonic() < deadline and proc.poll() is None:
        if "crash" in store.stream_names():
            committed = store.stream_info("crash").committed
            if committed >= 3:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= committed < len(expected) - 1, "the kill should land mid-way"
    lease_gone = time.monotonic() + 5
    while store.client.exists("tempo:s:{crash}:writer"):
        assert time.monotonic() < lease_gone, "the dead writer's lease did not expire"
        time.sleep(0.05)

    report = json_out(tempo_cli("ingest", str(video_120s), "--stream", "crash", "--json"))
    assert report["resumed_from"] > committed
    info = store.stream_info("crash")
    assert info.segments == len(expected) and info.committed == len(expected) - 1
    records = list(store.iter_segments("crash", tokens=False, embedding=False))
    assert [(r.index, r.start, r.end) for r in records] == [
        (i, pytest.approx(s, abs=1e-6), pytest.approx(e, abs=1e-6)) for i, s, e in expected
    ]
    out = json_out(tempo_cli("ask", "--stream", "crash", QUESTION, "--json", "--max-new-tokens", "4"))
    assert [s["index"] for s in out["segments"]] == list(range(len(expected)))


def test_asking_an_unknown_stream_names_the_known_ones(tempo_cli: CliRunner, video_20s: Path) -> None:
    tempo_cli("ingest", str(video_20s), "--stream", "clip")
    proc = tempo_cli("ask", "--stream", "nope", QUESTION, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["tempo: error: unknown stream 'nope'; known streams: clip"]


def test_ingest_of_a_missing_file_fails_cleanly_and_creates_nothing(
    tempo_cli: CliRunner, redis_url: str, tmp_path: Path
) -> None:
    proc = tempo_cli("ingest", str(tmp_path / "missing.mp4"), "--stream", "x", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert RedisMemoryStore(redis.Redis.from_url(redis_url)).stream_names() == []


def test_a_stream_cannot_be_resumed_from_another_source(
    tempo_cli: CliRunner, video_20s: Path, video_120s: Path
) -> None:
    tempo_cli("ingest", str(video_20s), "--stream", "clip")
    proc = tempo_cli("ingest", str(video_120s), "--stream", "clip", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "was ingested from" in proc.stderr


def test_ingest_again_after_completion_commits_nothing_new(tempo_cli: CliRunner, video_20s: Path) -> None:
    first = json_out(tempo_cli("ingest", str(video_20s), "--stream", "clip", "--json"))
    again = json_out(tempo_cli("ingest", str(video_20s), "--stream", "clip", "--json"))
    assert (first["committed"], first["last_committed"]) == (5, 4)
    assert (again["committed"], again["resumed_from"], again["last_committed"]) == (0, 5, 4)


def test_ctrl_c_stops_ingest_cleanly_and_the_next_run_finishes_it(
    tempo_cli: CliRunner, tempo_env: dict[str, str], redis_url: str, video_120s: Path
) -> None:
    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tempo.tools.cli", "ingest", str(video_120s), "--stream", "cc", "--batch-size", "2"],
        env=tempo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if "cc" in store.stream_names() and store.stream_info("cc").committed >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the ingest ended before Ctrl-C: {proc.communicate()[1]}"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again to resume" in stderr
    stopped_at = store.stream_info("cc").committed
    assert stopped_at < 29
    report = json_out(tempo_cli("ingest", str(video_120s), "--stream", "cc", "--json"))
    assert report["resumed_from"] == stopped_at + 1
    assert store.stream_info("cc").segments == 30


def test_ask_with_a_thread_continues_the_conversation_from_the_shell(
    tempo_cli: CliRunner, video_20s: Path
) -> None:
    tempo_cli("ingest", str(video_20s), "--stream", "clip")
    first = json_out(
        tempo_cli("ask", "--stream", "clip", "--thread", "t1", QUESTION, "--json", "--max-new-tokens", "6")
    )
    second = json_out(
        tempo_cli("ask", "--stream", "clip", "--thread", "t1", "And after that?", "--json", "--max-new-tokens", "6")
    )
    assert first["thread_id"] == second["thread_id"] == "t1"
    assert second["question"] == "And after that?"
    assert second["standalone_question"] != "And after that?"  # rewritten with the thread's history
    shown = json_out(tempo_cli("threads", "show", "t1", "--json"))
    assert shown["id"] == "t1" and shown["stream"] == "clip"
    assert [t["question"] for t in shown["turns"]] == [QUESTION, "And after that?"]
    assert [t["answer"] for t in shown["turns"]] == [first["answer"], second["answer"]]
