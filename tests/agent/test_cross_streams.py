"""Questions across streams (tempo.engine.multi, Conversations.ask_streams) on the real memory and tiny model."""

from __future__ import annotations

import numpy as np
import pytest
from tempo.agent.conversations import Conversations
from tempo.agent.cross import choose_streams, named_streams
from tempo.agent.memory_backend import MemoryBackend
from tempo.engine.multi import KEY_SHIFT, CrossStreamRecall, assemble_streams, split_plan, stream_rows
from tempo.memory.errors import UnknownStreamError
from tempo.settings import AskSettings

MAX_NEW = 12
YARDS = ("yard1", "yard2")


@pytest.fixture(scope="module")
def yards(live_service):
    """Two more live-style streams beside the session's "cam" (removed afterwards: the tool tests expect
    the one stream)."""
    from agent_live_memory import add_live_stream  # loaded by conftest.py

    add_live_stream(live_service, "yard1", segments=6, wallclock0=1_700_000_000.0)
    add_live_stream(live_service, "yard2", segments=5, wallclock0=1_700_000_100.0)
    yield live_service
    for name in YARDS:
        live_service.store.delete_stream(name)


def _segment_embedding(service, stream: str, index: int) -> np.ndarray:
    record = service.store.get_segments(stream, [index], tokens=False, embedding=True, recompress=False)[0]
    return np.asarray(record.embedding, np.float32)


def test_top_k_spans_the_chosen_streams_and_ata_keeps_one_budget(yards):
    cross = CrossStreamRecall(yards.recall)
    streams = ["cam", "yard2"]
    query = _segment_embedding(yards, "yard2", 3)  # the best match is yard2's segment 3
    from tempo.engine.multi import retrieve_streams

    yards.index.sync()
    got = retrieve_streams(yards.index, streams, query, top_k=3, neighbours=1)
    assert (got.hits[0].stream, got.hits[0].index) == ("yard2", 3)
    assert set(got.candidates) <= set(streams)
    assert {2, 3, 4} <= set(got.candidates["yard2"].tolist())  # the hit's neighbours, in its own stream
    hits = MemoryBackend(yards).retrieve_streams(streams, "a red square", 3, None, AskSettings())
    assert all(h["stream"] in streams for h in hits)
    compression = cross.compress(streams, "a red square", hits)
    assert {k >> KEY_SHIFT for k in compression.results} <= {0, 1}
    plan = cross.plan(streams, compression, budget=64, min_tokens=4)
    assert int(plan.counts.sum()) <= 64  # one budget over the union
    parts = split_plan(plan, streams)
    assert sum(len(p.indices) for p in parts.values()) == len(plan.indices)
    rows = stream_rows(plan, streams)
    assert [r["stream"] for r in rows] == sorted(r["stream"] for r in rows)  # grouped per stream, set order
    infos = {s: yards.stream(s) for s in streams}
    memory = assemble_streams(yards.store, infos, plan, compression)
    tags = [tag for tag, _ in memory]
    assert all(t.startswith(("<cam ", "<yard2 ")) and t.endswith(" seconds>") for t in tags)
    assert any(t.startswith("<yard2 ") for t in tags)


def test_a_one_shot_question_over_all_streams_names_them_and_makes_no_thread(yards, monkeypatch):
    conv = Conversations(yards, settings=AskSettings(max_new_tokens=MAX_NEW))
    before = len(conv.list_threads())
    calls: list[str] = []
    embed = yards.embedder.embed_text

    def counting(text: str) -> np.ndarray:
        calls.append(text)
        return embed(text)

    monkeypatch.setattr(yards.embedder, "embed_text", counting)
    result = conv.ask_streams(None, "Which camera saw the red square?")
    assert len(calls) == 1  # the query is embedded once for every stream
    assert result["thread_id"] is None and len(conv.list_threads()) == before
    assert result["streams"] == sorted(["cam", *YARDS])
    assert {r["stream"] for r in result["segments"]} == set(result["streams"])
    assert all(c["stream"] in result["streams"] for c in result["candidates"])
    assert all(c["stream"] in result["streams"] for c in result["citations"])
    assert result["tokens"] <= result["budget"]


def test_one_stream_is_the_single_stream_path(yards):
    conv = Conversations(yards, settings=AskSettings(max_new_tokens=MAX_NEW))
    question = "What moves across the picture?"
    once = conv.ask_once("cam", question)
    across = conv.ask_streams(["cam"], question)
    assert across["answer"] == once["answer"] and across["segments"] == once["segments"]
    assert across["streams"] == ["cam"] and across["stream"] == "cam"


def test_a_thread_spans_streams_and_a_follow_up_keeps_the_set_unless_it_names_another(yards):
    conv = Conversations(yards, settings=AskSettings(max_new_tokens=MAX_NEW))
    first = conv.ask_streams(list(YARDS), "Where does the red square go?", new_thread=True)
    tid = first["thread_id"]
    assert tid is not None and first["streams"] == list(YARDS)
    second = conv.ask_streams(None, "And when does it stop?", thread_id=tid)
    assert second["streams"] == list(YARDS)
    third = conv.ask_streams(None, "What about on cam?", thread_id=tid)
    assert third["streams"] == ["cam"]
    listed = next(t for t in conv.list_threads() if t["id"] == tid)
    assert listed["title"] == "Where does the red square go?"
    assert listed["turns"] == 3 and listed["last_turn_at"] >= listed["created"]
    assert listed["streams"] == ["cam"]
    conv.delete_thread(tid)


def test_stream_sets_are_checked_in_one_sentence(yards):
    with pytest.raises(UnknownStreamError, match="unknown stream 'nope'"):
        choose_streams(yards, ["yard1", "nope"], "q", None)
    with pytest.raises(Exception, match="list of streams is empty"):
        choose_streams(yards, [], "q", None)
    assert choose_streams(yards, ["yard2", "yard1", "yard2"], "q", None) == ["yard1", "yard2"]
    assert named_streams("was it on YARD2 or cam, not yard10?", ["cam", "yard1", "yard2"]) == ["cam", "yard2"]


def test_an_alert_question_across_streams_answers_from_each_streams_alerts(yards):
    conv = Conversations(yards, settings=AskSettings(max_new_tokens=MAX_NEW))
    result = conv.ask_streams(list(YARDS), "What alerts fired today?")
    assert result["rewrite_source"] == "alerts" and result["streams"] == list(YARDS)
    assert "yard1" in result["answer"] and "yard2" in result["answer"]
