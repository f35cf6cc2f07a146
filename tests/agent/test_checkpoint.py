"""RedisCheckpointSaver keeps the promises of LangGraph's own savers, on a real redis-server."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
import redis
from langgraph.checkpoint.base import ERROR, INTERRUPT, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.base.id import uuid6
from tempo.agent.checkpoint import RedisCheckpointSaver


def make_checkpoint(values: dict[str, Any], versions: dict[str, str]) -> Checkpoint:
    return Checkpoint(
        v=4,
        id=str(uuid6(clock_seq=-1)),
        ts=dt.datetime.now(dt.UTC).isoformat(),
        channel_values=values,
        channel_versions=versions,
        versions_seen={},
        updated_channels=list(values),
    )


def config_of(thread: str, ns: str = "", checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def put_chain(
    saver: RedisCheckpointSaver, thread: str, n: int, ns: str = "", step_source: str = "loop"
) -> list[dict[str, Any]]:
    """n checkpoints, each child of the previous; channel 'count' changes every time, 'name' only once."""
    configs = []
    config = config_of(thread, ns)
    for step in range(n):
        values = {"count": step, "name": "first"}
        versions = {"count": saver.get_next_version(None if step == 0 else f"{step}.0", None)}
        versions["name"] = "00000000000000000000000000000001.0"
        new_versions = dict(versions) if step == 0 else {"count": versions["count"]}
        metadata: CheckpointMetadata = {"source": step_source, "step": step, "parents": {}}
        config = saver.put(config, make_checkpoint(values, versions), metadata, new_versions)
        configs.append(config)
    return configs


@pytest.fixture()
def redis_url(any_redis_url: str) -> str:
    """These tests run on one redis-server and on a 3-master Redis Cluster."""
    return any_redis_url


@pytest.fixture()
def saver(redis_url: str) -> RedisCheckpointSaver:
    s = RedisCheckpointSaver.from_url(redis_url)
    yield s
    s.close()


def test_put_returns_config_naming_the_stored_checkpoint(saver: RedisCheckpointSaver) -> None:
    ck = make_checkpoint({"a": 1}, {"a": "1"})
    returned = saver.put(config_of("t1"), ck, {"source": "input", "step": -1}, {"a": "1"})
    assert returned == config_of("t1", "", ck["id"])


def test_get_tuple_without_id_returns_latest_with_values_metadata_and_parent(
    saver: RedisCheckpointSaver,
) -> None:
    configs = put_chain(saver, "t1", 3)
    tup = saver.get_tuple(config_of("t1"))
    assert tup is not None
    assert tup.config == configs[-1]
    assert tup.checkpoint["id"] == configs[-1]["configurable"]["checkpoint_id"]
    # 'name' was only written with the first checkpoint: its blob is found through the version.
    assert tup.checkpoint["channel_values"] == {"count": 2, "name": "first"}
    assert tup.metadata == {"source": "loop", "step": 2, "parents": {}}
    assert tup.parent_config == configs[1]
    assert tup.pending_writes == []


def test_get_tuple_by_id_returns_that_older_checkpoint(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 3)
    tup = saver.get_tuple(configs[0])
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"count": 0, "name": "first"}
    assert tup.parent_config is None
    assert saver.get(configs[1])["channel_values"]["count"] == 1


def test_get_tuple_of_unknown_thread_or_id_is_none(saver: RedisCheckpointSaver) -> None:
    put_chain(saver, "t1", 1)
    assert saver.get_tuple(config_of("nobody")) is None
    assert saver.get_tuple(config_of("t1", "", str(uuid6()))) is None


def test_values_of_any_serde_type_round_trip(saver: RedisCheckpointSaver) -> None:
    value = {
        "bytes": b"\x00\x01\n",
        "list": [1, 2.5, "x"],
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "set": {1, 2},
        "text": "line\nwith\x00nul",
    }
    ck = make_checkpoint({"v": value, "none": None}, {"v": "1", "none": "1"})
    saver.put(config_of("t1"), ck, {"source": "input", "step": -1}, {"v": "1", "none": "1"})
    got = saver.get(config_of("t1"))
    assert got["channel_values"] == {"v": value, "none": None}


def test_list_yields_newest_first(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 5)
    listed = [t.config for t in saver.list(config_of("t1"))]
    assert listed == list(reversed(configs))


def test_list_limit_and_before(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 5)
    assert [t.config for t in saver.list(config_of("t1"), limit=2)] == [configs[4], configs[3]]
    older = [t.config for t in saver.list(config_of("t1"), before=configs[3])]
    assert older == [configs[2], configs[1], configs[0]]
    assert [t.config for t in saver.list(config_of("t1"), before=configs[3], limit=1)] == [configs[2]]
    assert list(saver.list(config_of("t1"), limit=0)) == []


def test_list_pages_through_more_checkpoints_than_one_batch(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 150)  # more than the 64 ids fetched per round trip
    listed = [t.config for t in saver.list(config_of("t1"))]
    assert listed == list(reversed(configs))


def test_list_filters_on_metadata(saver: RedisCheckpointSaver) -> None:
    put_chain(saver, "t1", 4)
    saver.put(
        config_of("t1"),
        make_checkpoint({"count": 9}, {"count": "9"}),
        {"source": "update", "step": 4, "user": "ana"},
        {"count": "9"},
    )
    updates = list(saver.list(config_of("t1"), filter={"source": "update"}))
    assert [t.metadata["step"] for t in updates] == [4]
    loop_step_1 = saver.list(config_of("t1"), filter={"source": "loop", "step": 1})
    assert [t.metadata["step"] for t in loop_step_1] == [1]
    assert list(saver.list(config_of("t1"), filter={"user": "bob"})) == []


def test_list_without_config_covers_every_thread(saver: RedisCheckpointSaver) -> None:
    put_chain(saver, "a", 2)
    put_chain(saver, "b", 3)
    threads = [t.config["configurable"]["thread_id"] for t in saver.list(None)]
    assert threads == ["a", "a", "b", "b", "b"]


def test_list_with_checkpoint_id_yields_only_that_checkpoint(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 3)
    assert [t.config for t in saver.list(configs[1])] == [configs[1]]


def test_put_writes_appear_as_pending_writes_in_task_order(saver: RedisCheckpointSaver) -> None:
    config = put_chain(saver, "t1", 1)[0]
    saver.put_writes(config, [("b", "b-0"), ("c", "b-1")], task_id="task-b", task_path="~b")
    saver.put_writes(config, [("a", "first-task-0")], task_id="task-a", task_path="~a")
    tup = saver.get_tuple(config)
    assert tup.pending_writes == [
        ("task-a", "a", "first-task-0"),
        ("task-b", "b", "b-0"),
        ("task-b", "c", "b-1"),
    ]


def test_put_writes_is_idempotent_for_the_same_task_and_index(saver: RedisCheckpointSaver) -> None:
    config = put_chain(saver, "t1", 1)[0]
    saver.put_writes(config, [("a", 1)], task_id="task")
    saver.put_writes(config, [("a", 2)], task_id="task")  # a replayed task: the first write stands
    assert saver.get_tuple(config).pending_writes == [("task", "a", 1)]


def test_special_writes_replace_the_previous_one(saver: RedisCheckpointSaver) -> None:
    config = put_chain(saver, "t1", 1)[0]
    saver.put_writes(config, [(ERROR, "first failure")], task_id="task")
    saver.put_writes(config, [(ERROR, "second failure")], task_id="task")
    saver.put_writes(config, [(INTERRUPT, ["ask"])], task_id="task")
    writes = saver.get_tuple(config).pending_writes
    assert sorted(writes) == sorted([("task", ERROR, "second failure"), ("task", INTERRUPT, ["ask"])])


def test_writes_belong_to_their_checkpoint_only(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "t1", 2)
    saver.put_writes(configs[0], [("a", "old")], task_id="task")
    assert saver.get_tuple(configs[0]).pending_writes == [("task", "a", "old")]
    assert saver.get_tuple(configs[1]).pending_writes == []


def test_delete_thread_removes_everything_of_that_thread_only(saver: RedisCheckpointSaver) -> None:
    for thread in ("gone", "gone:child", "kept"):
        configs = put_chain(saver, thread, 2)
        put_chain(saver, thread, 1, ns="sub:1")
        saver.put_writes(configs[-1], [("a", 1)], task_id="task")
    saver.delete_thread("gone")
    assert saver.get_tuple(config_of("gone")) is None
    assert saver.get_tuple(config_of("gone", "sub:1")) is None
    assert list(saver.list(config_of("gone"))) == []
    keys = sorted(k.decode() for k in saver.client.keys("*"))
    assert not [k for k in keys if "{gone}" in k], keys
    for thread in ("gone:child", "kept"):  # a thread whose id starts with the deleted one stays
        assert len(list(saver.list({"configurable": {"thread_id": thread}}))) == 3
        assert saver.get_tuple(config_of(thread)).pending_writes == [("task", "a", 1)]
    assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"gone:child", "kept"}


def test_namespaces_are_isolated(saver: RedisCheckpointSaver) -> None:
    root = put_chain(saver, "t1", 2)
    child = put_chain(saver, "t1", 3, ns="child:abc|grand:def")
    assert saver.get_tuple(config_of("t1")).config == root[-1]
    assert saver.get_tuple(config_of("t1", "child:abc|grand:def")).config == child[-1]
    assert len(list(saver.list(config_of("t1", "")))) == 2
    assert len(list(saver.list(config_of("t1", "child:abc|grand:def")))) == 3
    everything = {"configurable": {"thread_id": "t1"}}  # no namespace: all of them
    assert len(list(saver.list(everything))) == 5


def test_state_is_shared_by_two_saver_instances(redis_url: str) -> None:
    first = RedisCheckpointSaver.from_url(redis_url)
    configs = put_chain(first, "t1", 2)
    first.close()
    second = RedisCheckpointSaver.from_url(redis_url)
    assert second.get_tuple(config_of("t1")).config == configs[-1]
    second.close()


def test_prefixes_keep_two_savers_apart(redis_url: str) -> None:
    a = RedisCheckpointSaver.from_url(redis_url, prefix="app-a")
    b = RedisCheckpointSaver.from_url(redis_url, prefix="app-b")
    put_chain(a, "t1", 1)
    assert b.get_tuple(config_of("t1")) is None
    assert list(b.list(None)) == []


def test_ttl_sets_an_expiry_on_every_key_and_thread_vanishes_after_it(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url, ttl=60)
    config = put_chain(saver, "t1", 2)[-1]
    put_chain(saver, "t1", 1, ns="sub")
    saver.put_writes(config, [("a", 1)], task_id="task")
    thread_keys = [k for k in saver.client.scan_iter("*") if b"{t1}" in k]  # SCAN: every shard of a cluster
    # namespaces set + root (ids, checkpoints, blobs, writes, write_keys) + "sub" (no writes there)
    assert len(thread_keys) == 1 + 5 + 3
    assert all(0 < saver.client.pttl(k) <= 60_000 for k in thread_keys)

    short = RedisCheckpointSaver.from_url(redis_url, ttl=0.3, prefix="short")
    put_chain(short, "t2", 1)
    assert short.get_tuple(config_of("t2")) is not None
    time.sleep(0.6)
    assert short.get_tuple(config_of("t2")) is None


def test_without_ttl_keys_do_not_expire(saver: RedisCheckpointSaver) -> None:
    put_chain(saver, "t1", 1)
    assert all(saver.client.pttl(k) == -1 for k in saver.client.scan_iter("*"))


def test_client_decoding_responses_is_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisCheckpointSaver(redis.Redis.from_url(redis_url, decode_responses=True))


def test_next_version_increases_as_strings(saver: RedisCheckpointSaver) -> None:
    versions = [saver.get_next_version(None, None)]
    for _ in range(12):
        versions.append(saver.get_next_version(versions[-1], None))
    assert versions == sorted(versions)
    assert int(versions[-1].split(".")[0]) == 13
    assert saver.get_next_version(7, None).startswith(f"{8:032}.")


def test_async_methods_match_the_sync_ones(saver: RedisCheckpointSaver) -> None:
    async def scenario() -> None:
        ck = make_checkpoint({"a": "x"}, {"a": "1"})
        config = await saver.aput(config_of("t1"), ck, {"source": "input", "step": -1}, {"a": "1"})
        await saver.aput_writes(config, [("a", "y")], task_id="task")
        tup = await saver.aget_tuple(config_of("t1"))
        assert tup.checkpoint["channel_values"] == {"a": "x"}
        assert tup.pending_writes == [("task", "a", "y")]
        assert [t.config async for t in saver.alist(config_of("t1"))] == [config]
        later = await saver.aput(config, make_checkpoint({"a": "x"}, {"a": "1"}), {"source": "loop", "step": 0}, {})
        assert [t.config async for t in saver.alist(config_of("t1"), limit=1)] == [later]
        assert [t.config async for t in saver.alist(None, filter={"source": "input"})] == [config]
        await saver.acopy_thread("t1", "t2")
        assert (await saver.aget_tuple(config_of("t2"))).checkpoint["channel_values"] == {"a": "x"}
        await saver.adelete_thread("t1")
        assert await saver.aget_tuple(config_of("t1")) is None

    asyncio.run(scenario())


def test_copy_thread_copies_checkpoints_writes_and_namespaces(saver: RedisCheckpointSaver) -> None:
    configs = put_chain(saver, "src", 3)
    put_chain(saver, "src", 2, ns="sub:1")
    saver.put_writes(configs[-1], [("a", "pending")], task_id="task")
    saver.copy_thread("src", "dst")
    copied = saver.get_tuple(config_of("dst"))
    assert copied.checkpoint["id"] == configs[-1]["configurable"]["checkpoint_id"]
    assert copied.checkpoint["channel_values"] == {"count": 2, "name": "first"}
    assert copied.pending_writes == [("task", "a", "pending")]
    assert copied.parent_config["configurable"]["thread_id"] == "dst"
    assert len(list(saver.list({"configurable": {"thread_id": "dst"}}))) == 5
    saver.delete_thread("src")
    assert len(list(saver.list({"configurable": {"thread_id": "dst"}}))) == 5
