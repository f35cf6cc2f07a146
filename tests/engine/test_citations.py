"""The cite node's parser: times in answers -> citations on real segments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tempo.engine.citations import Citation, SegmentSpan, SegmentTimeline, cite, find_times
from tempo.streaming.segment import Segment, SourceInfo

# 30 segments of 4 s: segment i covers [4i, 4i + 4).
SEGMENTS = [{"index": i, "start": 4.0 * i, "end": 4.0 * i + 4.0} for i in range(30)]


def cited(answer: str, segments=SEGMENTS) -> list[tuple[float, float, list[int]]]:
    return [(c.start, c.end, list(c.segments)) for c in cite(answer, segments)]


def test_model_time_tags_cite_their_segment() -> None:
    assert cited("<12.5 seconds> a man enters; <18.0 seconds> he leaves.") == [
        (12.5, 12.5, [3]),
        (18.0, 18.0, [4]),
    ]


def test_at_n_seconds() -> None:
    assert cited("A man enters at 12.5 seconds.") == [(12.5, 12.5, [3])]
    assert cited("around 1 minute and 5 seconds") == [(65.0, 65.0, [16])]


def test_colon_times_are_offsets() -> None:
    assert cited("At 00:01:05 the car stops.") == [(65.0, 65.0, [16])]
    assert cited("at 1:05 the car stops") == [(65.0, 65.0, [16])]
    assert cited("at 0:12.5") == [(12.5, 12.5, [3])]


@pytest.mark.parametrize(
    "answer",
    [
        "It rains from 10 s to 20 s.",
        "It rains between 10 and 20 seconds.",
        "It rains 10-20 s.",
        "It rains 00:10–00:20.",
        "It rains from 0:10 to 0:20.",
    ],
)
def test_ranges_cite_every_overlapped_segment(answer: str) -> None:
    assert cited(answer) == [(10.0, 20.0, [2, 3, 4])]


def test_range_of_tags() -> None:
    assert cited("<10.0 seconds> to <14.0 seconds>") == [(10.0, 14.0, [2, 3])]


def test_range_in_minutes_scales_the_bare_first_number() -> None:
    assert cited("between 1 and 2 minutes") == [(60.0, 120.0, list(range(15, 30)))]


def test_lengths_are_not_times() -> None:
    assert cited("The rain lasted 5 seconds.") == []


def test_times_outside_the_stream_are_dropped_unless_asked() -> None:
    assert cited("at 500 seconds nothing") == []
    kept = cite("at 500 seconds nothing", SEGMENTS, keep_unmatched=True)
    assert [(c.start, c.segments) for c in kept] == [(500.0, ())]


def test_the_very_end_belongs_to_the_last_segment() -> None:
    assert cited("at 120 seconds") == [(120.0, 120.0, [29])]


def test_repeated_times_collapse() -> None:
    assert cited("<12.5 seconds> and again <12.5 seconds>") == [(12.5, 12.5, [3])]


def test_gaps_between_segments_are_not_cited() -> None:
    # A live stream that lost signal between 8 s and 20 s.
    gappy = [(0, 0.0, 4.0), (1, 4.0, 8.0), (2, 20.0, 24.0)]
    assert cited("at 10 seconds", gappy) == []
    assert cited("from 6 s to 22 s", gappy) == [(6.0, 22.0, [1, 2])]


def test_citation_dict_shape() -> None:
    (citation,) = cite("at 12.5 seconds", SEGMENTS)
    assert citation.to_dict() == {
        "start": 12.5, "end": 12.5, "segments": [3], "text": "at 12.5 seconds", "stream": None, "cue": None
    }  # fmt: skip


def test_segments_may_be_spans_tuples_or_segment_objects() -> None:
    source = SourceInfo(uri="x.mp4", kind="file", live=False)
    real = [
        Segment(
            stream_id="s",
            index=i,
            start=4.0 * i,
            end=4.0 * i + 4.0,
            timestamps=np.arange(8) * 0.5 + 4.0 * i,
            frames=np.zeros((8, 16, 16, 3), np.uint8),
            source=source,
            sample_fps=2.0,
        )
        for i in range(3)
    ]
    for segments in (real, [(s.index, s.start, s.end) for s in real], [SegmentSpan(1, 4.0, 8.0)]):
        assert cited("at 5 seconds", segments) == [(5.0, 5.0, [1])]


def test_find_times_reports_text_and_position() -> None:
    answer = "First <2.0 seconds>, then from 10 s to 20 s."
    assert [(m.start, m.end, m.text, m.position) for m in find_times(answer)] == [
        (2.0, 2.0, "<2.0 seconds>", 6),
        (10.0, 20.0, "from 10 s to 20 s", 26),
    ]


@given(st.integers(min_value=0, max_value=29))
def test_the_centre_tag_of_any_segment_cites_that_segment(index: int) -> None:
    centre = SEGMENTS[index]["start"] + 2.0
    assert cite(f"see <{centre:.1f} seconds>", SegmentTimeline(SEGMENTS)) == [
        Citation(centre, centre, (index,), f"<{centre:.1f} seconds>")
    ]


def test_a_duration_in_a_place_is_not_a_time_but_n_seconds_in_is() -> None:
    assert cited("He stood for 5 seconds in the kitchen.") == []
    assert cited("About 12 s in, he sits down.") == [(12.0, 12.0, [3])]


@given(st.text(max_size=300))
def test_any_answer_text_is_handled_without_error(text: str) -> None:
    for c in cite(text, SEGMENTS):
        assert c.start <= c.end and c.segments


def test_citing_stays_fast_on_adversarial_text() -> None:
    import time

    for text in ("9 minutes, " * 3000, "12 seconds and " * 2000, "<1 seconds> to " * 2000):
        t0 = time.perf_counter()
        cite(text, SEGMENTS)
        assert time.perf_counter() - t0 < 2.0
