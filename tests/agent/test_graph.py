"""The agent graph's wiring and its backend-free nodes.

Running the whole graph needs its real backend (model + memory),
`tempo.agent.memory_backend.MemoryBackend`; those end-to-end tests live with it (test_conversations.py).
"""

from __future__ import annotations

import pytest
from tempo.agent.graph import after_compress, build_agent_graph, cite, remember, widen
from tempo.agent.turn import turn_input
from tempo.errors import InvalidTimeScopeError, TempoError
from tempo.inputs import check_time_range
from tempo.settings import AskSettings

SETTINGS = AskSettings(top_k=8, widen_factor=4, weak_evidence=0.5, evidence_segments=2)
# Segments 1, 3 and 4 were recompressed for the question; 0 and 2 are anchors.
TIMELINE = [
    {
        "index": i,
        "start": 4.0 * i,
        "end": 4.0 * i + 4.0,
        "relevance": r,
        "tokens": t,
        "kind": "anchor" if r is None else "candidate",
        "gap_before": 0.0,
    }
    for i, (r, t) in enumerate([(None, 4), (0.9, 128), (None, 4), (0.6, 60), (0.3, 16)])
]


def test_graph_wires_the_issue_flow_with_one_conditional_widening_loop() -> None:
    graph = build_agent_graph(backend=None).get_graph()  # wiring only: no node runs
    edges = {(e.source, e.target, e.conditional) for e in graph.edges}
    assert edges == {
        ("__start__", "rewrite", False),
        ("rewrite", "retrieve", False),
        ("retrieve", "compress", False),
        ("compress", "widen", True),
        ("compress", "allocate", True),
        ("widen", "retrieve", False),
        ("allocate", "answer", False),
        ("answer", "cite", False),
        ("cite", "remember", False),
        ("remember", "__end__", False),
    }


FULL = [{"index": i} for i in range(8)]  # as many candidates as K = 8


def test_weak_evidence_widens_once_only() -> None:
    weak = {"top_relevance": 0.3, "candidates": FULL, "k": 8}
    assert after_compress({**weak, "widened": False}, settings=SETTINGS) == "widen"
    assert after_compress({**weak, "widened": True}, settings=SETTINGS) == "allocate"
    assert after_compress({**weak, "top_relevance": 0.7, "widened": False}, settings=SETTINGS) == "allocate"


def test_no_widening_when_the_scope_was_seen_whole() -> None:
    state = {"top_relevance": 0.3, "candidates": FULL[:5], "k": 8, "widened": False}
    assert after_compress(state, settings=SETTINGS) == "allocate"


def test_an_empty_scope_widens_but_an_empty_stream_does_not() -> None:
    scope = {"start": 0.0, "end": 5.0, "phrase": "in the first 5 seconds"}
    empty = {"top_relevance": None, "candidates": [], "k": 8, "widened": False}
    assert after_compress({**empty, "time_scope": scope}, settings=SETTINGS) == "widen"
    assert after_compress({**empty, "time_scope": None}, settings=SETTINGS) == "allocate"


def test_widen_multiplies_k_and_says_why() -> None:
    update = widen({"k": 8, "top_relevance": 0.31, "candidates": [{"index": 1}]}, settings=SETTINGS)
    assert update == {
        "widened": True,
        "k": 32,
        "widen_reason": "highest relevance 0.31 < 0.50; retrieved 32 candidates instead of 8",
    }


def test_widen_drops_an_empty_time_scope() -> None:
    scope = {"start": 0, "end": 5, "phrase": "in the first 5 seconds"}
    state = {"k": 8, "top_relevance": None, "candidates": [], "time_scope": scope}
    update = widen(state, settings=SETTINGS)
    assert update["widened"] is True and update["time_scope"] is None
    assert "whole stream" in update["widen_reason"]


def test_cite_points_at_allocation_segments_and_attaches_best_candidates() -> None:
    state = {
        "answer": "A car at <6.0 seconds>, it leaves from 12 s to 20 s.",
        "timeline": TIMELINE,
    }
    update = cite(state, settings=SETTINGS)
    assert update["citations"] == [
        {"start": 6.0, "end": 6.0, "segments": [1], "text": "<6.0 seconds>", "stream": None,
         "cue": None},
        {"start": 12.0, "end": 20.0, "segments": [3, 4], "text": "from 12 s to 20 s", "stream": None,
         "cue": None},
    ]
    assert [e["index"] for e in update["evidence"]] == [1, 3]


def test_remember_appends_the_turn_to_history() -> None:
    turn = {"question": "and then?", "standalone_question": "Who came? And then?", "answer": "He left."}
    state = {**turn, "citations": []}
    assert remember(state, settings=AskSettings()) == {"history": [{**turn, "ranges": [], "cited": None}]}
    # What the next turn's "after that" refers to: the asked ranges and the span of the citations.
    cited = {**state, "asked_ranges": [[0.0, 60.0]], "citations": [
        {"start": 12.0, "end": 12.0, "segments": [1], "text": "0:12"},
        {"start": 30.0, "end": 38.0, "segments": [3, 4], "text": "from 0:30 to 0:38"},
    ]}  # fmt: skip
    remembered = remember(cited, settings=AskSettings())["history"][-1]
    assert remembered["ranges"] == [[0.0, 60.0]] and remembered["cited"] == [12.0, 38.0]


def test_remember_keeps_only_the_turns_the_rewrite_reads() -> None:
    turns = [{"question": f"q{i}", "standalone_question": f"Q{i}?", "answer": f"a{i}"} for i in range(6)]
    state = {**turns[5], "history": turns[:5]}
    assert remember(state, settings=AskSettings(history_turns=3))["history"] == [
        *turns[3:5], {**turns[5], "ranges": [], "cited": None}
    ]
    assert remember(state, settings=AskSettings(history_turns=0))["history"] == []


def test_turn_input_sets_every_input_key_and_resets_the_turns_costs() -> None:
    expected = {
        "stream": "lobby",
        "streams": None,
        "question": "who?",
        "time_range": None,
        "cache_hits": 0,
        "compressed": 0,
        "answer_cached": False,
        "timings": {},
    }
    assert turn_input("lobby", "who?") == expected
    assert turn_input("lobby", "who?", time_range=(10, 20))["time_range"] == [10.0, 20.0]
    assert turn_input("lobby", "who?", streams=["lobby"])["streams"] is None  # one stream: the usual path
    assert turn_input("lobby", "who?", streams=["lobby", "yard"])["streams"] == ["lobby", "yard"]


def test_a_bad_range_is_refused_at_the_edge_as_a_user_error() -> None:
    # turn_input takes its range as valid: the ways in check it with tempo.inputs.check_time_range.
    for bad in ((20, 10), (-5, 3), (4, 4)):
        with pytest.raises(InvalidTimeScopeError) as err:
            check_time_range(*bad)
        assert isinstance(err.value, TempoError)
