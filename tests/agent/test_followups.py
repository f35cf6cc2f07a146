"""Follow-ups that move in time and questions with several ranges (tempo.agent.scopes): the scope a
person means, phrase by phrase, and the deterministic standalone question."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tempo.agent.scopes import read_scope, reference_of, retrieve_in_ranges, standalone_for, turn_scope
from tempo.agent.timescope import StreamClock

REC = StreamClock(duration=150.0)  # a 2:30 recording
# A live camera started at 09:55 UTC, 40 minutes covered so far (now = 10:35).
LIVE = StreamClock(duration=2400.0, origin=dt.datetime(2026, 11, 25, 9, 55, tzinfo=dt.UTC).timestamp(), tz=dt.UTC)
FIRST_MINUTE = [(0.0, 60.0)]  # the previous turn looked at 0:00-1:00
LAST_MINUTE = [(90.0, 150.0)]
CITED = [(40.0, 50.0)]  # the previous answer cited 0:40-0:50
MOMENT = [(45.0, 45.0)]  # ... or the single instant 0:45

# (question, previous turn's reference, the ranges a person means; None: no time scope)
PHRASINGS: list[tuple[str, list[tuple[float, float]] | None, list[tuple[float, float]] | None]] = [
    # The examples.
    ("What happens in the first minute?", None, [(0, 60)]),
    ("And after that?", FIRST_MINUTE, [(60, 150)]),
    ("what about before that?", LAST_MINUTE, [(0, 90)]),
    ("compare the first and the last minute", None, [(0, 60), (90, 150)]),
    ("compare 0:10 with 2:10", None, [(0, 40), (100, 150)]),
    # after / before the previous turn (its cited range when it had citations).
    ("And then?", CITED, [(50, 150)]),
    ("What happened next?", CITED, [(50, 150)]),
    ("What did he do later?", CITED, [(50, 150)]),
    ("and afterwards?", CITED, [(50, 150)]),
    ("What happened then?", CITED, [(50, 150)]),
    ("since then?", CITED, [(50, 150)]),
    ("What happened earlier?", CITED, [(0, 40)]),
    ("Was she there previously?", CITED, [(0, 40)]),
    ("until then, who was inside?", CITED, [(0, 40)]),
    # windows and moments around the previous turn, in digits and in words.
    ("And in the 30 seconds after that?", CITED, [(50, 80)]),
    ("in the ten seconds before that?", CITED, [(30, 40)]),
    ("What happened in the two minutes after that?", FIRST_MINUTE, [(60, 150)]),
    ("What happens in the next 20 seconds?", CITED, [(50, 70)]),
    ("And the minute before that?", LAST_MINUTE, [(30, 90)]),
    ("What did he do 10 seconds later?", CITED, [(55, 65)]),
    ("and thirty seconds later?", CITED, [(65, 95)]),
    ("what was there two minutes earlier?", [(130.0, 140.0)], [(0, 40)]),
    ("half a minute later?", CITED, [(65, 95)]),
    ("in the fifteen seconds after that", CITED, [(50, 65)]),
    ("a couple of minutes later?", CITED, [(140, 150)]),  # 2:50 ± 30 s, clipped to the stream
    ("right after that, who left?", CITED, [(50, 110)]),
    ("just before that?", CITED, [(0, 40)]),
    ("what else was going on at that time?", CITED, [(40, 50)]),
    ("Meanwhile, what did the dog do?", CITED, [(40, 50)]),
    ("at that moment, where was the car?", MOMENT, [(15, 75)]),
    ("and before?", CITED, [(0, 40)]),
    ("what about the previous minute?", CITED, [(0, 40)]),  # the minute before that, clipped
    ("what about the first 10 seconds after that?", CITED, [(50, 60)]),
    ("Did he leave after that happened?", CITED, [(50, 150)]),
    # relative and absolute mixed.
    ("after that and before 2:00, who came in?", CITED, [(50, 120)]),
    ("What happened between 1:00 and 1:30 and after that?", None, [(60, 90), (90, 150)]),
    ("in the first 30 seconds and the 30 seconds after that", None, [(0, 30), (30, 60)]),
    ("What happened after 1:00? And before that?", None, [(0, 60), (60, 150)]),
    ("What happened in the last 2 minutes?", CITED, [(30, 150)]),
    # several absolute ranges.
    ("between 0:10 and 0:20 and between 1:00 and 1:10", None, [(10, 20), (60, 70)]),
    ("what happens at 0:30 and at 2:00?", None, [(0, 60), (90, 150)]),
    ("From 0:10 to 0:20, and from 1:40 to 1:50?", None, [(10, 20), (100, 110)]),
    ("at the 1 minute mark and at the 2 minute mark", None, [(30, 90), (90, 150)]),
    ("compare the first 30 seconds with the last 30 seconds", None, [(0, 30), (120, 150)]),
    ("the first and last 10 seconds", None, [(0, 10), (140, 150)]),
    ("in the first two minutes and the last twenty seconds", None, [(0, 120), (130, 150)]),
    ("after 0:30 but before 1:00", None, [(30, 60)]),
    ("in the middle and at the end", None, [(60, 90), (120, 150)]),
    ("what happened in the second minute?", None, [(60, 120)]),
    ("what about the previous minute?", None, [(90, 150)]),  # no previous turn: the stream's last minute
    ("what happened later than 1:00?", None, [(60, 150)]),
    # around a time point.
    ("What happened in the 30 seconds before 2:00?", None, [(90, 120)]),
    ("What happened in the minute before 2:00?", None, [(60, 120)]),
    ("What about the 10 seconds after 2:00?", None, [(120, 130)]),
    ("what happened 30 seconds after 1:00?", None, [(75, 105)]),
    # clock times on a live camera (see LIVE).
    ("between 10:00 and 10:10 and after 10:30", None, [(300, 900), (2100, 2400)]),
    ("what happened at 10am and at 10:30?", None, [(270, 330), (2070, 2130)]),
    # words that are not times.
    ("Who is the first person to enter?", None, None),
    ("Look at a minute detail on the sign", None, None),
    ("Was there a second car after a second person came in?", None, None),
    ("Who is standing next to the door?", CITED, None),
    ("As I asked earlier, what colour is the car?", CITED, None),
    ("What happened after the meeting?", CITED, None),
    ("What happened before that car arrived?", CITED, None),
    ("Who was in the room then?", CITED, None),
    ("Did the second runner finish first?", CITED, None),
    ("What will happen next week?", CITED, None),
    ("Who is the next customer?", CITED, None),
    ("And after that?", None, None),  # nothing to be after
]


@pytest.mark.parametrize(("question", "reference", "expected"), PHRASINGS)
def test_the_scope_a_person_means(question, reference, expected) -> None:
    clock = LIVE if "10:" in question or "10am" in question else REC
    found = read_scope(question, clock, reference)
    got = None if found is None else [(round(a, 3), round(b, 3)) for a, b in found.ranges]
    assert got == (None if expected is None else [(float(a), float(b)) for a, b in expected])


def test_there_are_at_least_forty_phrasings() -> None:
    assert len(PHRASINGS) >= 40


def test_relative_phrases_say_how_they_were_read() -> None:
    found = read_scope("And after that?", REC, FIRST_MINUTE)
    assert found is not None and found.relative
    assert found.phrase == "after that (after 1:00, from the previous turn)"
    assert found.to_dict() == {
        "start": 60.0, "end": 150.0, "phrase": found.phrase, "ranges": [{"start": 60.0, "end": 150.0}]
    }  # fmt: skip
    both = read_scope("compare 0:10 with 2:10", REC)
    assert both is not None and not both.relative
    assert both.to_dict()["ranges"] == [{"start": 0.0, "end": 40.0}, {"start": 100.0, "end": 150.0}]
    assert (both.to_dict()["start"], both.to_dict()["end"]) == (0.0, 150.0)


# ----- the deterministic standalone question -------------------------------------------------------------


def _standalone(question: str, reference, previous: str) -> str:
    found = read_scope(question, REC, reference)
    assert found is not None and found.relative
    return standalone_for(question, found, previous, REC)


def test_a_time_only_follow_up_asks_the_previous_question_at_the_new_time() -> None:
    first = "What happens in the first minute?"
    second = _standalone("And after that?", FIRST_MINUTE, first)
    assert second == "What happens after 1:00?"
    third = _standalone("and before that?", [(60.0, 150.0)], second)
    assert third == "What happens before 1:00?"  # never "What happens ...? And after that? And before that?"
    assert _standalone("what about before that?", LAST_MINUTE, "What happens in the last minute?") == (
        "What happens before 1:30?"
    )


def test_a_follow_up_with_content_keeps_only_the_first_sentence_of_the_previous_question() -> None:
    previous = "Who entered the shop? What happens after 0:50?"
    assert _standalone("and what did he buy after that?", CITED, previous) == (
        "Who entered the shop? What did he buy after 0:50?"
    )
    assert _standalone("what did the clerk do in the 30 seconds after that?", CITED, "Who entered the shop?") == (
        "What did the clerk do between 0:50 and 1:20?"
    )
    # Without time words in the previous question, the new time is asked about after it.
    assert _standalone("and then?", CITED, "When does the truck arrive?") == (
        "When does the truck arrive? What happens after 0:50?"
    )


@given(st.text(max_size=200), st.floats(min_value=0, max_value=150), st.floats(min_value=0, max_value=150))
def test_any_text_gives_ranges_inside_the_stream(text: str, a: float, b: float) -> None:
    found = read_scope(text, REC, [(min(a, b), max(a, b))])
    if found is not None:
        assert all(0.0 <= s < e <= REC.duration for s, e in found.ranges)
        assert all(x[1] <= y[0] for x, y in zip(found.ranges, found.ranges[1:], strict=False))
        if found.relative:
            standalone_for(text, found, text, REC)


# ----- what "that" refers to, and retrieval per range -----------------------------------------------------


def test_that_is_the_cited_range_else_the_ranges_looked_at() -> None:
    assert reference_of({"ranges": [[0.0, 60.0]], "cited": [12.0, 38.0]}) == [(12.0, 38.0)]
    assert reference_of({"ranges": [[0.0, 60.0], [90.0, 150.0]], "cited": None}) == [(0.0, 60.0), (90.0, 150.0)]
    assert reference_of({"ranges": [], "cited": None}) is None
    assert reference_of({"question": "an old turn, stored before ranges existed"}) is None
    assert reference_of(None) is None


def test_a_follow_up_without_time_words_keeps_the_previous_ranges() -> None:
    previous = {"question": "q", "standalone_question": "What happens at 0:30 and at 2:00?", "answer": "",
                "ranges": [[0.0, 60.0], [90.0, 150.0]], "cited": None}  # fmt: skip
    kept = turn_scope("and who was there?", "What happens at 0:30 and at 2:00? And who was there?", None, REC, previous)
    assert kept == {"start": 0.0, "end": 150.0, "phrase": "previous turn",
                    "ranges": [{"start": 0.0, "end": 60.0}, {"start": 90.0, "end": 150.0}]}  # fmt: skip
    # A question that stands alone starts afresh; a model's rewrite may bring time words of its own.
    assert turn_scope("Is there a dog in the kitchen?", "Is there a dog in the kitchen?", None, REC, previous) is None
    own = turn_scope("Is the dog there?", "Is the dog there after 2:00?", None, REC, None)
    assert own is not None and own["ranges"] == [{"start": 120.0, "end": 150.0}]


def test_candidates_come_from_every_range() -> None:
    segments = [(i, 4.0 * i, 4.0 * i + 4.0) for i in range(40)]  # 160 s of 4 s segments
    asked: list[tuple[tuple[float, float] | None, int]] = []

    def retrieve(rng, k):
        asked.append((rng, k))
        inside = [s for s in segments if rng is None or (s[1] < rng[1] and s[2] > rng[0])]
        hits = [{"index": i, "start": s, "end": e, "score": -(i + 1) / 100} for i, s, e in inside[:k]]  # < 0
        after = inside[k : k + 1]  # one temporal neighbour, score 0
        return hits + [{"index": i, "start": s, "end": e, "score": 0.0} for i, s, e in after]

    hits = retrieve_in_ranges(retrieve, [(0.0, 20.0), (100.0, 120.0)], 4)
    assert asked == [((0.0, 20.0), 2), ((100.0, 120.0), 2)]
    assert [h["index"] for h in hits] == [0, 1, 25, 26, 2, 27]  # hits best first, then neighbours
    asked.clear()
    assert [h["index"] for h in retrieve_in_ranges(retrieve, None, 3)] == [0, 1, 2, 3]
    assert asked == [(None, 3)]


@pytest.mark.parametrize(
    "text", ["after that " * 360, "0:10 " * 800, "the 30 seconds after that " * 150, "first and " * 400]
)
def test_reading_stays_fast_on_adversarial_questions(text: str) -> None:
    import time

    t0 = time.perf_counter()
    found = read_scope(text[:4000], REC, CITED)  # questions are at most 4000 characters
    if found is not None and found.relative:
        standalone_for(text[:4000], found, text[:4000], REC)
    assert time.perf_counter() - t0 < 2.0
