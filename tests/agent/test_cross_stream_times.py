"""Time words of a cross-stream question on each stream's own clock (tempo.agent.stream_scopes), and one
read of the streams' headers per question; on the real memory and tiny model."""

from __future__ import annotations

import io

import pytest
from tempo.agent.conversations import Conversations
from tempo.agent.rewrite import HistoryTurn
from tempo.agent.stream_scopes import read_across, retrieve_across, stream_ranges
from tempo.agent.timescope import StreamClock
from tempo.settings import AskSettings

MAX_NEW = 12
LONG, SHORT = "longcam", "shortcam"  # 120 s and 32 s, each from its own time 0


@pytest.fixture(scope="module")
def two_clocks(live_service):
    """Two streams of different lengths beside the session's "cam" (removed afterwards)."""
    from agent_live_memory import add_live_stream  # loaded by conftest.py

    add_live_stream(live_service, LONG, segments=30, wallclock0=None)
    add_live_stream(live_service, SHORT, segments=8, wallclock0=None)
    yield live_service
    for name in (LONG, SHORT):
        live_service.store.delete_stream(name)


def _ranges(scope: dict, stream: str) -> list[tuple[float, float]]:
    return [(r["start"], r["end"]) for r in scope["streams"][stream]["ranges"]]


def _inside(hit: dict, ranges: list[tuple[float, float]]) -> bool:
    return any(hit["start"] < b and a < hit["end"] for a, b in ranges)


# ----- reading (no model) ---------------------------------------------------------------------------------

CLOCKS = {"cam1": StreamClock(600.0), "cam2": StreamClock(120.0)}


def test_the_last_minute_is_each_streams_own_last_minute():
    scope = read_across("What happened in the last minute?", CLOCKS, None).scope()
    assert _ranges(scope, "cam1") == [(540.0, 600.0)] and _ranges(scope, "cam2") == [(60.0, 120.0)]
    assert [(r["start"], r["end"]) for r in scope["ranges"]] == [(60.0, 120.0), (540.0, 600.0)]
    assert (scope["start"], scope["end"]) == (60.0, 600.0)
    assert all(e["note"] is None for e in scope["streams"].values())
    recent = read_across("Who came in recently?", CLOCKS, None).scope()  # the end's edge: 10 %, at least 30 s
    assert _ranges(recent, "cam1") == [(540.0, 600.0)] and _ranges(recent, "cam2") == [(90.0, 120.0)]


def test_an_absolute_time_is_the_same_numbers_and_a_shorter_stream_adds_nothing():
    scope = read_across("What is there at 5:00?", CLOCKS, None).scope()
    assert _ranges(scope, "cam1") == [(270.0, 330.0)]
    short = scope["streams"]["cam2"]
    assert short["ranges"] == [] and short["start"] is None
    assert "cam2 covers 0:00–2:00" in short["note"] and "adds nothing" in short["note"]
    first = read_across("What happens in the first 30 seconds?", CLOCKS, None).scope()
    assert _ranges(first, "cam1") == _ranges(first, "cam2") == [(0.0, 30.0)]
    assert stream_ranges(scope, ["cam1", "cam2"]) == {"cam1": [(270.0, 330.0)], "cam2": []}


def test_after_that_follows_each_streams_cited_range_else_its_scope():
    previous = HistoryTurn(
        question="What happened in the last minute?",
        standalone_question="What happened in the last minute?",
        answer="cam1 at 9:10",
        ranges=[[60.0, 120.0], [540.0, 600.0]],
        cited=[550.0, 554.0],
        stream_ranges={"cam1": [[540.0, 600.0]], "cam2": [[60.0, 120.0]]},
        stream_cited={"cam1": [550.0, 554.0]},
    )
    reading = read_across("And after that?", CLOCKS, previous)
    assert reading.relative
    scope = reading.scope()
    assert _ranges(scope, "cam1") == [(554.0, 600.0)]  # after cam1's cited moment
    assert scope["streams"]["cam2"]["ranges"] == []  # its scope ended at its end: nothing after it
    before = read_across("What happened before that?", CLOCKS, previous).scope()
    assert _ranges(before, "cam1") == [(0.0, 550.0)] and _ranges(before, "cam2") == [(0.0, 60.0)]
    standalone = read_across("And before that?", CLOCKS, previous).standalone(previous["standalone_question"])
    assert "before 9:10 on cam1" in standalone and "before 1:00 on cam2" in standalone


def test_after_that_without_a_reference_on_a_stream_searches_it_whole():
    previous = HistoryTurn(question="q", standalone_question="Where is the truck?", answer="cam1 at 0:42",
                           ranges=[], cited=[40.0, 44.0], stream_ranges=None, stream_cited={"cam1": [40.0, 44.0]})
    scope = read_across("What happened after that?", CLOCKS, previous).scope()
    assert _ranges(scope, "cam1") == [(44.0, 600.0)]
    assert _ranges(scope, "cam2") == [(0.0, 120.0)] and "searched all of it" in scope["streams"]["cam2"]["note"]


def test_retrieval_takes_each_streams_ranges_and_skips_streams_with_none():
    calls: list[dict] = []

    def retrieve(ranges: dict, k: int) -> list[dict]:
        calls.append({"ranges": ranges, "k": k})
        return [{"stream": s, "index": 0, "start": 0.0, "end": 4.0, "score": 0.5} for s in ranges]

    per = {"cam1": [(0.0, 60.0), (540.0, 600.0)], "cam2": [(0.0, 60.0)], "cam3": []}
    hits = retrieve_across(retrieve, per, ["cam1", "cam2", "cam3"], 8)
    assert calls == [{"ranges": {"cam1": (0.0, 60.0), "cam2": (0.0, 60.0)}, "k": 4},
                     {"ranges": {"cam1": (540.0, 600.0)}, "k": 4}]  # fmt: skip
    assert [(h["stream"], h["index"]) for h in hits] == [("cam1", 0), ("cam2", 0)]  # no (stream, index) twice
    assert retrieve_across(retrieve, {"cam1": [], "cam2": []}, ["cam1", "cam2"], 8) == []


# ----- on real streams ------------------------------------------------------------------------------------


def test_the_last_seconds_of_two_real_streams_read_each_streams_own_end(two_clocks):
    conv = Conversations(two_clocks, settings=AskSettings(max_new_tokens=MAX_NEW, top_k=4))
    result = conv.ask_streams([LONG, SHORT], "What happened in the last 20 seconds?")
    scope = result["time_scope"]
    assert _ranges(scope, LONG) == [(100.0, 120.0)] and _ranges(scope, SHORT) == [(12.0, 32.0)]
    assert not result["widened"]
    for name in (LONG, SHORT):
        found = [h for h in result["candidates"] if h["stream"] == name]
        assert found and all(_inside(h, _ranges(scope, name)) for h in found), name
        rows = [r for r in result["segments"] if r["stream"] == name and r["kind"] == "candidate"]
        assert rows and all(_inside(r, _ranges(scope, name)) for r in rows), name


def test_an_absolute_time_past_a_short_streams_end_reads_only_the_long_one(two_clocks):
    conv = Conversations(two_clocks, settings=AskSettings(max_new_tokens=MAX_NEW, top_k=4))
    result = conv.ask_streams([LONG, SHORT], "What is there at 1:40?")
    scope = result["time_scope"]
    assert _ranges(scope, LONG) == [(70.0, 120.0)]
    assert scope["streams"][SHORT]["ranges"] == [] and "adds nothing" in scope["streams"][SHORT]["note"]
    assert result["candidates"] and {h["stream"] for h in result["candidates"]} == {LONG}
    assert all(_inside(h, [(70.0, 120.0)]) for h in result["candidates"])
    assert not result["widened"]
    from tempo.tools.commands.chat import print_turn_extras  # what `tempo ask --streams` prints

    out = io.StringIO()
    print_turn_extras(result, out)
    assert f"    {LONG}: 1:10–2:00\n" in out.getvalue()
    assert f"    {SHORT}: nothing ({SHORT} covers 0:00–0:32: none of it is in the asked time" in out.getvalue()


def test_a_relative_follow_up_moves_on_each_streams_own_reference(two_clocks):
    conv = Conversations(two_clocks, settings=AskSettings(max_new_tokens=MAX_NEW, top_k=4))
    first = conv.ask_streams([LONG, SHORT], "What happened in the last 20 seconds?", new_thread=True)
    second = conv.ask_streams(None, "And before that?", thread_id=first["thread_id"])
    assert second["streams"] == [LONG, SHORT] and second["rewrite_source"] == "fallback"
    for name in (LONG, SHORT):
        cited = [c for c in first["citations"] if c["stream"] == name]
        start = min(c["start"] for c in cited) if cited else _ranges(first["time_scope"], name)[0][0]
        assert _ranges(second["time_scope"], name) == [(0.0, start)], name
        found = [h for h in second["candidates"] if h["stream"] == name]
        assert all(_inside(h, [(0.0, start)]) for h in found), name
    conv.delete_thread(first["thread_id"])


def test_a_cross_stream_question_reads_the_stream_headers_once(two_clocks, monkeypatch):
    store = two_clocks.store
    reads: list[str] = []
    for method in ("stream_info", "list_streams", "stream_infos"):
        real = getattr(store, method)

        def counting(*args, _real=real, _name=method, **kwargs):
            reads.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, method, counting)
    conv = Conversations(two_clocks, settings=AskSettings(max_new_tokens=MAX_NEW, top_k=4, weak_evidence=1.01))
    result = conv.ask_streams([LONG, SHORT], "Where does the red square go in the last 20 seconds?")
    assert result["widened"]  # retrieve and compress ran twice: still one read
    assert reads == ["stream_infos"]


def test_the_clocks_of_live_streams_are_read_in_one_round_trip(two_clocks, monkeypatch):
    from agent_live_memory import add_live_stream
    from tempo.agent.memory_backend import MemoryBackend

    add_live_stream(two_clocks, "wallcam", segments=3, wallclock0=1_700_000_000.0)
    try:
        store = two_clocks.store
        calls: list[dict] = []
        real = store.wallclock_origins
        monkeypatch.setattr(store, "wallclock_origins", lambda firsts: calls.append(dict(firsts)) or real(firsts))
        clocks = MemoryBackend(two_clocks).streams_clocks([LONG, SHORT, "wallcam"])
        assert calls == [{LONG: 0, SHORT: 0, "wallcam": 0}]  # every live stream's first segment, one read
        assert clocks == {LONG: StreamClock(120.0), SHORT: StreamClock(32.0),
                          "wallcam": StreamClock(12.0, origin=1_700_000_000.0)}  # fmt: skip
        assert MemoryBackend(two_clocks).stream_clock("wallcam") == clocks["wallcam"]
    finally:
        two_clocks.store.delete_stream("wallcam")


def test_a_follow_up_on_fewer_or_other_streams_keeps_each_streams_own_time(two_clocks):
    conv = Conversations(two_clocks, settings=AskSettings(max_new_tokens=MAX_NEW, top_k=4))
    first = conv.ask_streams([LONG, SHORT], "What happened in the last 20 seconds?", new_thread=True)
    one = conv.ask_streams(None, f"And what about on {SHORT}?", thread_id=first["thread_id"])
    assert one["streams"] == [SHORT]
    assert one["time_scope"]["ranges"] == [{"start": 12.0, "end": 32.0}]  # its own part, not the union
    conv.delete_thread(first["thread_id"])
    first = conv.ask_streams([LONG, SHORT], "What happened in the last 20 seconds?", new_thread=True)
    other = conv.ask_streams(None, f"And on {LONG} and cam?", thread_id=first["thread_id"])
    assert other["streams"] == ["cam", LONG]
    assert _ranges(other["time_scope"], LONG) == [(100.0, 120.0)]
    assert _ranges(other["time_scope"], "cam") == [(20.0, 40.0)]  # the question's words on cam's own clock
    conv.delete_thread(first["thread_id"])
