"""ThreadStore: conversation transcripts in Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from tempo.agent.checkpoint import RedisCheckpointSaver
from tempo.agent.errors import (
    InvalidThreadIdError,
    ThreadExistsError,
    ThreadNotFoundError,
    ThreadStreamMismatchError,
)
from tempo.agent.threads import ThreadStore
from tempo.errors import TempoError
from tempo.memory.embedded import connect

CITATION = {"start": 12.0, "end": 16.0, "segments": [3]}


@pytest.fixture()
def redis_url(any_redis_url: str) -> str:
    """These tests run on one redis-server and on a 3-master Redis Cluster."""
    return any_redis_url


@pytest.fixture()
def store(redis_url: str) -> ThreadStore:
    s = ThreadStore.from_url(redis_url)
    yield s
    s.close()


def test_create_makes_an_empty_thread_with_a_short_random_id(store: ThreadStore) -> None:
    before = time.time()
    record = store.create("lobby")
    assert len(record.id) == 12 and record.id.isalnum()
    assert record.stream == "lobby" and record.turns == 0
    assert before <= record.created == record.updated <= time.time()
    assert store.get(record.id) == record
    assert store.create("lobby").id != record.id


def test_create_with_a_taken_id_is_refused(store: ThreadStore) -> None:
    store.create("lobby", "t1")
    with pytest.raises(ThreadExistsError):
        store.create("garage", "t1")
    assert store.get("t1").stream == "lobby"


def test_invalid_thread_ids_are_user_errors(store: ThreadStore) -> None:
    for bad in ("", "with space", "-leading", "x" * 129, "a/b"):
        with pytest.raises(InvalidThreadIdError) as err:
            store.create("lobby", bad)
        assert isinstance(err.value, TempoError)


def test_get_of_unknown_thread_raises_a_user_error(store: ThreadStore) -> None:
    with pytest.raises(ThreadNotFoundError, match="no conversation thread 'nope'"):
        store.get("nope")


def test_append_turn_counts_turns_and_updates_the_time(store: ThreadStore) -> None:
    record = store.create("lobby", "t1")
    store.append_turn("t1", "who came in?", "Who came in?", "A man at <12.0 seconds>.", [CITATION])
    store.append_turn("t1", "and then?", "Who came in? And then?", "He left.", [])
    got = store.get("t1")
    assert got.turns == 2
    assert got.updated >= record.updated and got.created == record.created


def test_show_returns_the_transcript_in_the_cli_json_shape(store: ThreadStore) -> None:
    store.create("lobby", "t1")
    store.append_turn("t1", "who came in?", "Who came in?", "A man at <12.0 seconds>.", [CITATION])
    store.append_turn("t1", "and then?", "Who came in? And then?", "He left.")
    shown = store.show("t1")
    last = shown.pop("last_turn_at")
    assert last is not None and last >= store.get("t1").created
    assert shown == {
        "id": "t1",
        "stream": "lobby",
        "streams": ["lobby"],
        "title": "who came in?",  # the first question
        "turns": [
            {
                "question": "who came in?",
                "standalone_question": "Who came in?",
                "answer": "A man at <12.0 seconds>.",
                "citations": [CITATION],
            },
            {
                "question": "and then?",
                "standalone_question": "Who came in? And then?",
                "answer": "He left.",
                "citations": [],
            },
        ],
    }
    assert json.loads(json.dumps(shown)) == shown


def test_turns_last_n_gives_the_most_recent_ones_oldest_first(store: ThreadStore) -> None:
    store.create("lobby", "t1")
    for i in range(5):
        store.append_turn("t1", f"q{i}", f"Q{i}", f"a{i}")
    assert [t.question for t in store.turns("t1", last=2)] == ["q3", "q4"]
    assert [t.question for t in store.turns("t1")] == ["q0", "q1", "q2", "q3", "q4"]
    assert store.turns("t1", last=0) == []
    assert store.turns("t1", last=50)[0].question == "q0"


def test_append_to_unknown_thread_changes_nothing(store: ThreadStore) -> None:
    with pytest.raises(ThreadNotFoundError):
        store.append_turn("ghost", "q", "q", "a")
    assert store.client.keys("*") == []


def test_append_with_unserialisable_citation_changes_nothing(store: ThreadStore) -> None:
    store.create("lobby", "t1")
    with pytest.raises(TypeError):
        store.append_turn("t1", "q", "q", "a", [{"start": object()}])
    assert store.get("t1").turns == 0 and store.turns("t1") == []


def test_list_is_most_recent_first_and_filters_by_stream(store: ThreadStore) -> None:
    store.create("lobby", "a")
    store.create("garage", "b")
    store.create("lobby", "c")
    store.append_turn("a", "q", "q", "ans")  # 'a' becomes the most recently updated
    assert [r.id for r in store.list()] == ["a", "c", "b"]
    assert [r.id for r in store.list(stream="lobby")] == ["a", "c"]
    assert [r.id for r in store.list(limit=1)] == ["a"]
    assert store.list(stream="roof") == []


def test_open_continues_or_starts_and_refuses_another_stream(store: ThreadStore) -> None:
    started = store.open("lobby", "mine")
    assert started.turns == 0 and store.exists("mine")
    store.append_turn("mine", "q", "q", "a")
    assert store.open("lobby", "mine").turns == 1
    with pytest.raises(ThreadStreamMismatchError, match="is about stream 'lobby', not 'garage'"):
        store.open("garage", "mine")
    assert store.open("lobby").id != "mine"


def test_delete_removes_the_thread_and_its_checkpoints_only(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url)
    store = ThreadStore.from_url(redis_url, checkpointer=saver)
    for tid in ("gone", "kept"):
        store.create("lobby", tid)
        store.append_turn(tid, "q", "q", "a")
        saver.put(
            {"configurable": {"thread_id": tid, "checkpoint_ns": ""}},
            empty_checkpoint(),
            {"source": "input", "step": -1},
            {},
        )
    assert store.delete("gone") is True
    assert store.delete("gone") is False
    assert not store.exists("gone")
    assert saver.get_tuple({"configurable": {"thread_id": "gone"}}) is None
    assert saver.get_tuple({"configurable": {"thread_id": "kept"}}) is not None
    assert [r.id for r in store.list()] == ["kept"]
    assert store.get("kept").turns == 1


def test_thread_ids_that_look_like_key_suffixes_do_not_collide(store: ThreadStore) -> None:
    store.create("lobby", "x")
    store.create("lobby", "x:turns")
    store.create("lobby", "index")
    store.append_turn("x", "q", "q", "a")
    assert store.get("x:turns").turns == 0 and store.turns("x:turns") == []
    assert {r.id for r in store.list()} == {"x", "x:turns", "index"}


def test_ttl_expires_threads_and_list_forgets_them(redis_url: str) -> None:
    store = ThreadStore.from_url(redis_url, ttl=0.3)
    store.create("lobby", "t1")
    store.append_turn("t1", "q", "q", "a")
    assert 0 < store.client.pttl(store._turns_key("t1")) <= 300
    time.sleep(0.6)
    assert store.list() == []
    assert not store.exists("t1")


def test_works_with_a_decoding_client(redis_url: str) -> None:
    kind = type(connect(redis_url))  # redis.Redis, or redis.RedisCluster on the cluster
    store = ThreadStore(kind.from_url(redis_url, decode_responses=True))
    store.create("lobby", "t1")
    store.append_turn("t1", "q", "q", "a", [CITATION])
    assert store.show("t1")["turns"][0]["citations"] == [CITATION]
    assert store.list()[0].id == "t1"


def test_threads_survive_a_new_process(redis_url: str) -> None:
    store = ThreadStore.from_url(redis_url)
    store.create("lobby", "t1")
    store.append_turn("t1", "q1", "Q1", "a1", [CITATION])
    code = (
        "import json, sys; from tempo.agent.threads import ThreadStore; "
        "s = ThreadStore.from_url(sys.argv[1]); s.append_turn('t1', 'q2', 'Q2', 'a2'); "
        "print(json.dumps(s.show('t1')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, redis_url], capture_output=True, text=True, timeout=60, check=True
    )
    shown = json.loads(done.stdout)
    assert [t["question"] for t in shown["turns"]] == ["q1", "q2"]
    assert store.get("t1").turns == 2


def test_a_thread_may_span_streams_and_lists_its_first_question_and_last_turn(store: ThreadStore) -> None:
    record = store.open_streams(["gate", "lobby"], "t2")
    assert (record.stream, record.streams) == ("gate", ("gate", "lobby"))
    listed = store.list()[0].to_dict()
    assert listed["title"] == "" and listed["last_turn_at"] is None  # no turn yet
    store.append_turn("t2", "who came in?", "Who came in?", "A man.", [])
    store.append_turn("t2", "and then?", "Who came in? And then?", "He left.", [])
    assert store.open_streams(["lobby"], "t2").streams == ("lobby",)  # a follow-up named another stream
    listed = store.list()[0].to_dict()
    assert listed["title"] == "who came in?" and listed["streams"] == ["lobby"]
    assert listed["last_turn_at"] == store.get("t2").updated
    assert store.open("lobby", "t2").id == "t2"  # one of its streams


def test_a_thread_recorded_before_titles_lists_its_first_question(store: ThreadStore) -> None:
    store.create("lobby", "old")
    store.append_turn("old", "who came in?", "Who came in?", "A man.", [])
    store.client.hdel(store._thread_key("old"), "title", "last_turn_at")  # as an older release left it
    listed = store.list()[0].to_dict()
    assert listed["title"] == "who came in?" and listed["last_turn_at"] is None
