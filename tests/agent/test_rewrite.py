"""The rewrite node's deterministic parts: time scopes, fallback rewrite, rewrite validator."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tempo.agent.rewrite import (
    choose_standalone,
    clean_rewrite,
    fallback_rewrite,
    needs_context,
    rewrite_problem,
)
from tempo.agent.timescope import StreamClock, extract_stream_scope, extract_time_scope
from tempo.engine.timeexpr import parse_duration

UTC = dt.UTC
TWO_HOURS = StreamClock(duration=7200.0)  # a recording: no wall-clock origin
# A live camera started at 09:55 UTC, 40 minutes covered so far (now = 10:35).
LIVE = StreamClock(duration=2400.0, origin=dt.datetime(2026, 11, 25, 9, 55, tzinfo=UTC).timestamp(), tz=UTC)


def scope(question: str, clock: StreamClock = TWO_HOURS) -> tuple[float, float] | None:
    found = extract_time_scope(question, clock)
    return None if found is None else (found.start, found.end)


# ----- durations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10 minutes", 600),
        ("1.5 s", 1.5),
        ("12s", 12),
        ("2 min 30 s", 150),
        ("a minute and 5 seconds", 65),
        ("an hour and a half", 5400),
        ("half an hour", 1800),
        ("half hour", 1800),
        ("a quarter of an hour", 900),
        ("1h30m", 5400),
        ("2m30s", 150),
        ("twelve seconds", 12),
        ("forty-five minutes", 2700),
        ("a few minutes", 180),
    ],
)
def test_durations_in_words_and_digits(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


# ----- time scopes --------------------------------------------------------------------------------------


def test_last_hour_is_the_final_hour_of_the_stream() -> None:
    assert scope("What happened in the last hour?") == (3600.0, 7200.0)


def test_last_n_minutes() -> None:
    assert scope("who came in during the past 10 minutes?") == (6600.0, 7200.0)
    assert scope("in the last minute") == (7140.0, 7200.0)


def test_last_hour_of_a_shorter_stream_is_the_whole_stream() -> None:
    assert scope("in the last hour", StreamClock(duration=600.0)) == (0.0, 600.0)


def test_first_half_hour() -> None:
    assert scope("in the first half hour, who parked?") == (0.0, 1800.0)


def test_colon_range_on_a_recording_is_minutes_and_seconds() -> None:
    assert scope("what happened between 1:30 and 2:00?") == (90.0, 120.0)


def test_three_part_colon_range_is_hours_minutes_seconds() -> None:
    assert scope("between 1:00:00 and 1:10:30") == (3600.0, 4230.0)


def test_colon_range_on_a_live_stream_is_wall_clock_when_it_falls_inside() -> None:
    assert scope("what happened between 10:00 and 10:30?", LIVE) == (300.0, 2100.0)


def test_colon_range_on_a_live_stream_falls_back_to_offsets_outside_its_clock_span() -> None:
    # 1:30-2:00 at night is not covered by a camera running 09:55-10:35: read as offsets.
    assert scope("between 1:30 and 2:00", LIVE) == (90.0, 120.0)


def test_clock_range_crossing_midnight() -> None:
    night = StreamClock(3600.0, dt.datetime(2026, 11, 25, 23, 40, tzinfo=UTC).timestamp(), UTC)
    assert scope("between 23:50 and 0:10", night) == (600.0, 1800.0)


def test_clock_times_resolve_to_their_latest_occurrence_before_now() -> None:
    # A camera running for 26.5 hours from 08:00 yesterday (now 10:30): "10:00" is today's.
    long_run = StreamClock(26.5 * 3600, dt.datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp(), UTC)
    assert scope("after 10:00", long_run) == (26 * 3600.0, 26.5 * 3600)
    assert scope("between 9:00 and 9:30", long_run) == (25 * 3600.0, 25.5 * 3600)


def test_explicit_am_pm_is_a_clock_time_and_needs_an_origin() -> None:
    assert scope("at 10am", LIVE) == (270.0, 330.0)
    assert scope("before 10 am", LIVE) == (0.0, 300.0)
    assert scope("at 10am") is None  # a recording has no wall clock


def test_range_with_unit_on_the_second_number_only() -> None:
    assert scope("between 5 and 10 minutes") == (300.0, 600.0)
    assert scope("from 2 minutes to 3 minutes") == (120.0, 180.0)


def test_after_and_before() -> None:
    assert scope("what happened after 5 minutes?") == (300.0, 7200.0)
    assert scope("before 10 minutes") == (0.0, 600.0)
    assert scope("since 10:15", LIVE) == (1200.0, 2400.0)


def test_at_a_point_looks_thirty_seconds_each_side() -> None:
    assert scope("what was on the table at 5 minutes?") == (270.0, 330.0)
    assert scope("3 minutes into the video") == (150.0, 210.0)
    assert scope("around the 5 minute mark") == (270.0, 330.0)
    assert scope("at 0:10") == (0.0, 40.0)


def test_start_end_and_middle_are_ten_percent_bounded() -> None:
    assert scope("what happened at the start?") == (0.0, 720.0)
    assert scope("at the very end") == (6480.0, 7200.0)
    assert scope("in the middle") == (3240.0, 3960.0)
    assert scope("at the beginning", StreamClock(100.0)) == (0.0, 30.0)  # at least 30 s
    assert scope("at the end", StreamClock(86400.0)) == (85500.0, 86400.0)  # at most 15 min


def test_questions_without_time_words_have_no_scope() -> None:
    plain = ("who was at the door?", "what did the last person carry?", "describe the scene", "at 5 he left")
    for q in plain:
        assert scope(q) is None, q


def test_scope_entirely_outside_the_stream_is_none() -> None:
    assert scope("after 10 minutes", StreamClock(300.0)) is None
    assert scope("between 10:00 and 10:30", StreamClock(300.0)) is None


def test_empty_stream_has_no_scope() -> None:
    assert scope("in the last hour", StreamClock(0.0)) is None


def test_scope_carries_the_phrase_it_came_from() -> None:
    found = extract_time_scope("So, in the last 10 minutes, who came?", TWO_HOURS)
    assert found is not None and found.phrase == "in the last 10 minutes"
    assert found.to_dict() == {"start": 6600.0, "end": 7200.0, "phrase": "in the last 10 minutes"}


@given(
    duration=st.floats(min_value=1.0, max_value=200_000.0),
    n=st.integers(min_value=1, max_value=500),
    unit=st.sampled_from(["seconds", "minutes", "hours"]),
    form=st.sampled_from(["in the last {n} {u}", "in the first {n} {u}", "after {n} {u}", "at {n} {u}"]),
)
def test_scopes_always_lie_inside_the_stream(duration: float, n: int, unit: str, form: str) -> None:
    found = extract_time_scope(form.format(n=n, u=unit), StreamClock(duration))
    if found is not None:
        assert 0.0 <= found.start < found.end <= duration


# ----- fallback rewrite -----------------------------------------------------------------------------------


def test_follow_up_is_appended_to_the_previous_standalone_question() -> None:
    shop = fallback_rewrite("and after that?", ["Who entered the shop?"])
    assert shop == "Who entered the shop? And after that?"
    car = fallback_rewrite("what colour was it", ["Which car drove by?"])
    assert car == "Which car drove by? What colour was it?"


def test_standalone_question_is_kept_as_is() -> None:
    q = "Is there a dog in the kitchen?"
    assert not needs_context(q)
    assert fallback_rewrite(q, ["Who entered the shop?"]) == q


def test_first_question_is_kept_as_is() -> None:
    assert fallback_rewrite("and then?", []) == "and then?"


def test_chained_follow_ups_keep_the_original_subject_and_never_accumulate() -> None:
    history = ["Who entered the shop? And after that? What colour was his coat?"]
    assert fallback_rewrite("and then?", history) == "Who entered the shop? And then?"
    long = " ".join(["word"] * 80) + "?"
    rewritten = fallback_rewrite("and then?", [long], max_words=20)
    assert len(rewritten.split()) == 20 and rewritten.endswith("And then?")
    chained = fallback_rewrite("why?", ["Who came? " + " ".join(["Then what?"] * 40)], max_words=12)
    assert chained.startswith("Who came?") and chained.endswith("Why?") and len(chained.split()) <= 12


@pytest.mark.parametrize(
    "question",
    ["and after that?", "what about the truck?", "what colour was it?", "why?", "did he come back later?"],
)
def test_follow_ups_need_context(question: str) -> None:
    assert needs_context(question)


# ----- validator ----------------------------------------------------------------------------------------

HISTORY = ["Who entered the shop?", "A man in a red coat entered the shop at <12.0 seconds>."]


def test_a_good_rewrite_is_usable() -> None:
    assert rewrite_problem("What colour was the coat of the man who entered the shop?", "what colour was it?",
                           HISTORY) is None
    assert rewrite_problem("What did the man do after entering the shop?", "and after that?", HISTORY) is None


def test_labels_and_quotes_are_cleaned_before_validation() -> None:
    assert clean_rewrite('Standalone question: "What colour was the coat?"') == "What colour was the coat?"
    two_lines = "Rewritten question:\n**What colour was the coat?**\nextra"
    assert clean_rewrite(two_lines) == "What colour was the coat?"
    assert clean_rewrite("   \n  ") == ""


@pytest.mark.parametrize(
    ("candidate", "problem"),
    [
        ("", "empty"),
        (" ".join(["shop"] * 3 + ["word"] * 70), "too long"),
        ("ĠĠ## 3$% ~~ 12 @@ !! what", "not mostly words"),
        ("the shop the shop the shop the shop the shop", "repetitive"),
        ("coat coat coat coat", "repetitive"),
        ("Rewrite the follow-up question about the coat", "echoes the prompt"),
        ("user: what colour was the coat", "echoes the prompt"),
        ("What is the capital of France?", "unrelated to the question"),
        ("Which colour were the bananas, grapes, melons and cherries on sale?", "unrelated to the question"),
    ],
)
def test_unusable_rewrites_are_named(candidate: str, problem: str) -> None:
    assert rewrite_problem(candidate, "what colour was it?", HISTORY) == problem


def test_random_model_output_is_rejected() -> None:
    # Token soup such as a tiny random-weight model produces.
    soup = "ocracy unde Reservation Nav的 rigor ăn Lug Rox Parenthood"
    assert rewrite_problem(soup, "what colour was it?", HISTORY) is not None


def test_choose_standalone_prefers_a_valid_model_rewrite_then_falls_back() -> None:
    history = ["Who entered the shop?"]
    assert choose_standalone(None, "who came in?", []) == ("who came in?", "question")
    assert choose_standalone("What did the man do after entering the shop?", "and after that?", history) == (
        "What did the man do after entering the shop?",
        "model",
    )
    assert choose_standalone("ocracy unde Nav的 rigor", "and after that?", history) == (
        "Who entered the shop? And after that?",
        "fallback",
    )
    assert choose_standalone("", "Is there a dog in the kitchen?", history) == (
        "Is there a dog in the kitchen?",
        "question",
    )


# ----- stream scope -------------------------------------------------------------------------------------

STREAMS = ["lobby", "garage", "front_door", "garage-2"]


@pytest.mark.parametrize(
    ("question", "stream"),
    [
        ("what happened on the garage camera?", "garage"),
        ("in the lobby feed, who came?", "lobby"),
        ("on the front door camera, any parcel?", "front_door"),
        ("on stream garage-2, anything?", "garage-2"),
        ("the garage 2 camera at night", "garage-2"),
        ("camera 'lobby' at night", "lobby"),
        ("who was in the lobby?", None),
        ("what happened in the kitchen camera?", None),
    ],
)
def test_stream_named_as_a_stream(question: str, stream: str | None) -> None:
    assert extract_stream_scope(question, STREAMS) == stream


def test_n_minutes_ago_is_a_point_before_now() -> None:
    assert scope("what happened 10 minutes ago?") == (6570.0, 6630.0)


def test_noon_and_midnight_are_clock_times() -> None:
    live = StreamClock(4 * 3600.0, dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp(), UTC)
    assert scope("between noon and 1pm", live) == (7200.0, 10800.0)
    assert scope("since noon", live) == (7200.0, 14400.0)


def test_after_followed_by_an_event_is_not_a_time() -> None:
    assert scope("what did he do after the meeting?") is None


def test_a_duration_followed_by_in_a_place_is_not_a_point() -> None:
    assert scope("what happened for 5 seconds in the kitchen?") is None
    assert scope("3 minutes in, who arrived?") == (150.0, 210.0)


@given(st.text(max_size=300))
def test_any_text_is_handled_without_error(text: str) -> None:
    found = extract_time_scope(text, LIVE)
    assert found is None or 0.0 <= found.start < found.end <= LIVE.duration
    rewrite_problem(clean_rewrite(text), text, [text])
    fallback_rewrite(text, [text])


def test_parsing_stays_fast_on_adversarial_text() -> None:
    import time

    for text in ("9 minutes, " * 3000, "12 seconds and " * 2000, "between 1 and " * 2000):
        t0 = time.perf_counter()
        extract_time_scope(text, TWO_HOURS)
        assert time.perf_counter() - t0 < 2.0
