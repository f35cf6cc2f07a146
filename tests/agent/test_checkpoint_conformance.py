"""Differential test: random sequences of saver operations give the same results on
RedisCheckpointSaver as on LangGraph's reference InMemorySaver."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from langgraph.checkpoint.base import ERROR, INTERRUPT, Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from tempo.agent.checkpoint import RedisCheckpointSaver

THREADS = ["a", "b", "c:1"]
NAMESPACES = ["", "child:1", "child:2|grand:3"]
CHANNELS = ["x", "y", "z"]


def comparable(tuples) -> list[tuple]:
    return [
        (
            t.config["configurable"]["thread_id"],
            t.config["configurable"]["checkpoint_ns"],
            t.config["configurable"]["checkpoint_id"],
            t.checkpoint["channel_values"],
            t.checkpoint["channel_versions"],
            t.metadata,
            None if t.parent_config is None else t.parent_config["configurable"]["checkpoint_id"],
            t.pending_writes,
        )
        for t in tuples
    ]


def by_namespace(tuples) -> list[tuple]:
    """Rows grouped by (thread, namespace), keeping the saver's order inside each group: the savers
    promise newest-first within a namespace, not an order between threads or namespaces."""
    return sorted(comparable(tuples), key=lambda row: (row[0], row[1]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_the_in_memory_reference(redis_url: str, seed: int) -> None:
    rng = random.Random(seed)
    reference = InMemorySaver()
    redis_saver = RedisCheckpointSaver.from_url(redis_url)
    savers = (reference, redis_saver)
    heads: dict[tuple[str, str], str] = {}
    versions: dict[tuple[str, str], dict[str, int]] = {}
    written: list[dict[str, Any]] = []

    for step in range(300):
        # Deletes only in the first half, so the final sweep compares a well-filled store.
        weights = [12, 8, 1 if step < 150 else 0, 4]
        op = rng.choices(["put", "writes", "delete", "check"], weights=weights)[0]
        thread, ns = rng.choice(THREADS), rng.choice(NAMESPACES)
        if op == "put":
            current = versions.setdefault((thread, ns), {})
            changed = rng.sample(CHANNELS, rng.randint(0, len(CHANNELS)))
            for ch in changed:
                current[ch] = current.get(ch, 0) + 1
            channel_versions = {ch: f"{v:032}.0" for ch, v in current.items()}
            values = {ch: rng.choice([rng.random(), "text", [1, 2], {"k": None}]) for ch in current}
            if rng.random() < 0.2 and current:
                values.pop(rng.choice(list(current)))  # a channel with a version but no value
            checkpoint = Checkpoint(
                v=4,
                id=str(uuid6(clock_seq=rng.randint(0, 1000))),
                ts=dt.datetime.now(dt.UTC).isoformat(),
                channel_values=values,
                channel_versions=channel_versions,
                versions_seen={},
                updated_channels=None,
            )
            metadata = {"source": rng.choice(["input", "loop", "update"]), "step": rng.randint(-1, 5)}
            configurable = {"thread_id": thread, "checkpoint_ns": ns}
            if (thread, ns) in heads and rng.random() < 0.8:
                configurable["checkpoint_id"] = heads[(thread, ns)]
            new_versions = {ch: channel_versions[ch] for ch in changed}
            config = {"configurable": configurable}
            results = [s.put(config, checkpoint, metadata, new_versions) for s in savers]
            assert results[0] == results[1]
            heads[(thread, ns)] = checkpoint["id"]
            written.append(results[0])
        elif op == "writes" and written:
            config = rng.choice(written)
            task = rng.choice(["t1", "t2", "t3"])
            channels = [*CHANNELS, ERROR, INTERRUPT]
            writes = [(rng.choice(channels), rng.randint(0, 9)) for _ in range(rng.randint(1, 3))]
            path = rng.choice(["", "~a", "~b"])
            for s in savers:
                s.put_writes(config, writes, task, path)
        elif op == "delete":
            for s in savers:
                s.delete_thread(thread)
            heads = {k: v for k, v in heads.items() if k[0] != thread}
            versions = {k: v for k, v in versions.items() if k[0] != thread}
            written = [c for c in written if c["configurable"]["thread_id"] != thread]
        else:
            for config in (
                {"configurable": {"thread_id": thread}},
                {"configurable": {"thread_id": thread, "checkpoint_ns": ns}},
            ):
                assert by_namespace(redis_saver.list(config)) == by_namespace(reference.list(config))
            latest = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
            expected, got = reference.get_tuple(latest), redis_saver.get_tuple(latest)
            assert (got is None) == (expected is None)
            if expected is not None:
                assert comparable([got]) == comparable([expected])

    # Final sweep: every query form, on a store that is not trivially small.
    everything = by_namespace(reference.list(None))
    assert len(everything) >= 40 and sum(len(row[-1]) for row in everything) >= 20
    assert by_namespace(redis_saver.list(None)) == everything
    for thread in THREADS:
        for ns in NAMESPACES:
            config = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
            listed = list(reference.list(config))
            assert comparable(redis_saver.list(config, limit=3)) == comparable(listed[:3])
            assert comparable(redis_saver.list(config, filter={"source": "loop"})) == comparable(
                reference.list(config, filter={"source": "loop"})
            )
            if len(listed) > 2:
                before = listed[2].config
                assert comparable(redis_saver.list(config, before=before)) == comparable(
                    reference.list(config, before=before)
                )
            for t in listed:
                assert comparable([redis_saver.get_tuple(t.config)]) == comparable([t])
