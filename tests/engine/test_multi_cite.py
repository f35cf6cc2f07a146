"""Citations of cross-stream answers (tempo.engine.multi_cite): each time on the stream it is about."""

from __future__ import annotations

from tempo.engine.multi_cite import cite_streams


def _rows(stream: str, n: int, candidates: set[int]) -> list[dict]:
    return [
        {"stream": stream, "index": i, "start": 4.0 * i, "end": 4.0 * i + 4, "kind": "candidate" if i in candidates
         else "anchor"}
        for i in range(n)
    ]  # fmt: skip


ROWS = _rows("cam1", 20, {2}) + _rows("cam2", 20, {10, 11})


def _cited(answer: str) -> list[tuple[str | None, float, tuple[int, ...]]]:
    return [(c.stream, c.start, c.segments) for c in cite_streams(answer, ROWS, ["cam1", "cam2"])]


def test_a_stream_named_before_the_time_is_the_one_cited():
    assert _cited("The red truck is seen on cam2 at 0:42.") == [("cam2", 42.0, (10,))]


def test_a_tag_names_its_stream_and_a_name_after_the_time_counts_in_its_sentence():
    assert _cited("<cam1 9.0 seconds> shows it.") == [("cam1", 9.0, (2,))]
    assert _cited("At 0:09 on cam1 it enters. Later, at 0:42, cam2 sees it.") == [
        ("cam1", 9.0, (2,)),
        ("cam2", 42.0, (10,)),
    ]


def test_the_last_named_stream_carries_over_and_unnamed_times_go_to_candidate_streams():
    assert _cited("cam2 shows a truck at 0:41. It leaves at 0:45.") == [("cam2", 41.0, (10,)), ("cam2", 45.0, (11,))]
    assert _cited("A truck appears at 0:42.") == [("cam2", 42.0, (10,))]  # only cam2 recompressed that time
    assert _cited("on cam1 at 5:00") == []  # no segment there: dropped


def test_stream_names_are_whole_words():
    rows = _rows("cam1", 5, set()) + _rows("cam10", 5, set())
    found = cite_streams("cam10 at 0:05", rows, ["cam1", "cam10"])
    assert [(c.stream, c.segments) for c in found] == [("cam10", (1,))]
    assert found[0].to_dict()["stream"] == "cam10"
