"""Citations that point at a said line (engine/cue_cite.py): the cue a cited time falls in, the cue a
quote repeats, and only cues the answerer read."""

from __future__ import annotations

from typing import Any

from tempo.engine.citations import cite
from tempo.engine.multi_cite import cite_streams

ELEPHANT = {"text": "look, a blue elephant crosses the road", "start": 17.0, "end": 19.0,
            "source": "container:mov_text", "language": "eng"}
BUDGET = {"text": "the budget is due on friday", "start": 30.2, "end": 33.0, "source": "asr", "language": "en"}


def _rows(cues: dict[int, list[dict[str, Any]]], stream: str | None = None, n: int = 10) -> list[dict[str, Any]]:
    """Timeline rows of 4-s segments; `cues`: the cues each row carried into the prompt."""
    return [{"index": i, "start": 4.0 * i, "end": 4.0 * i + 4, "kind": "candidate", "relevance": 0.5, "stream": stream,
             "cues": cues.get(i, [])} for i in range(n)]


ROWS = _rows({4: [ELEPHANT], 7: [BUDGET], 8: [BUDGET]})


def _cited(answer: str, rows: list[dict[str, Any]] = ROWS) -> list[tuple[float, float, list[int], Any]]:
    return [(c.start, c.end, list(c.segments), c.cue and c.cue["text"]) for c in cite(answer, rows)]


def test_a_time_inside_a_line_the_answerer_read_carries_that_line() -> None:
    assert _cited("The elephant appears at <18.0 seconds>.") == [(18.0, 18.0, [4], ELEPHANT["text"])]
    (citation,) = cite("at 0:31", ROWS)
    assert citation.to_dict()["cue"] == BUDGET  # the whole cue: text, times, source, language


def test_a_time_outside_every_line_carries_none() -> None:
    assert _cited("A car passes at <6.0 seconds> and at 0:25.") == [(6.0, 6.0, [1], None), (25.0, 25.0, [6], None)]


def test_the_prompt_shows_times_to_a_tenth_so_a_rounded_edge_still_falls_in_the_line() -> None:
    assert _cited("at 30.2 seconds")[0][3] == BUDGET["text"]
    assert _cited("at 30.16 seconds")[0][3] == BUDGET["text"]
    assert _cited("at 30.1 seconds")[0][3] is None


def test_a_range_carries_the_line_it_matches_and_a_wide_range_none() -> None:
    assert _cited("from 17 s to 19 s")[0][3] == ELEPHANT["text"]
    assert _cited("between 10 and 40 seconds")[0][3] is None


def test_a_quoted_line_is_cited_at_its_own_time_even_without_a_time_in_the_answer() -> None:
    answer = 'She says "the budget is due on Friday" near the end.'
    assert _cited(answer) == [(30.2, 33.0, [7, 8], BUDGET["text"])]
    assert cite(answer, ROWS)[0].text == "the budget is due on Friday"


def test_a_quote_in_the_sentence_of_a_time_picks_the_line_on_that_segment() -> None:
    # 16.5 s is not inside the cue (17-19 s) but on its segment, and the sentence quotes it.
    assert _cited("At 16.5 seconds someone shouts 'a blue elephant'. Later, at 0:25, a car.") == [
        (16.5, 16.5, [4], ELEPHANT["text"]), (25.0, 25.0, [6], None)]


def test_a_quote_of_a_line_the_answerer_did_not_read_is_not_cited() -> None:
    unread = _rows({4: []})  # the cue exists in memory, but the text cap kept it out of the prompt
    assert _cited('Someone says "a blue elephant".', unread) == []


def test_one_word_quotes_and_apostrophes_do_not_cite_a_line() -> None:
    assert _cited("The word 'blue' is said; the speaker's elephant isn't 'real'.") == []


def test_the_same_line_said_twice_is_cited_at_each_time() -> None:
    again = dict(ELEPHANT, start=33.0, end=34.0)
    rows = _rows({4: [ELEPHANT], 8: [again]})
    assert [c[:2] for c in _cited('"a blue elephant crosses the road"', rows)] == [(17.0, 19.0), (33.0, 34.0)]


def test_across_streams_a_quoted_line_is_cited_on_its_stream() -> None:
    rows = _rows({}, "cam1") + _rows({7: [BUDGET]}, "cam2")
    found = cite_streams('cam1 shows a car at 0:05; on cam2 someone says "the budget is due on friday".', rows,
                         ["cam1", "cam2"])
    assert [(c.stream, c.start, c.cue and c.cue["text"]) for c in found] == [
        ("cam1", 5.0, None), ("cam2", 30.2, BUDGET["text"])]
    tagged = cite_streams("<cam2 31.0 seconds> the budget line", rows, ["cam1", "cam2"])
    assert [(c.stream, c.cue and c.cue["text"]) for c in tagged] == [("cam2", BUDGET["text"])]


def test_the_agent_cite_node_carries_the_line() -> None:
    from tempo.agent.graph import cite as cite_node
    from tempo.settings import AskSettings

    update = cite_node({"answer": "It is said at <18.0 seconds>.", "timeline": ROWS, "stream": "talk"},
                       settings=AskSettings())
    assert update["citations"][0]["cue"] == ELEPHANT and update["citations"][0]["stream"] == "talk"


def test_the_cli_prints_the_line_beside_the_citation() -> None:
    from tempo.tools.commands.chat import format_citation

    (citation,) = cite("at <18.0 seconds>", ROWS)
    line = format_citation(citation.to_dict())
    assert line.startswith("  [0:18] segment 4") and "said 0:17: 'look, a blue elephant crosses the road'" in line
