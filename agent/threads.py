"""Conversation threads: who asked what about which stream, kept in Redis beside the checkpoints.

Why turns are kept here and not derived from LangGraph checkpoints: a checkpoint is the graph's
working state (candidates, relevance scores, allocation...), whose shape changes with the graph; a
thread record is the user-facing transcript (`tempo threads show`), which must stay readable by a
process that never builds the graph (the CLI listing threads, the MCP server) and must not need every
checkpoint deserialized to count turns. So the agent appends one turn here when a question has been
answered, and the graph keeps its own state under the same thread id in `RedisCheckpointSaver`.
`ThreadStore.delete` removes both when given the saver.

Layout (prefix default "tempo:threads"):

    {prefix}:index              zset  thread id -> last update time (Unix seconds), for recency order
    {prefix}:thread:{id}        hash  id, stream, created, updated, turns (count); streams (comma-separated,
                                      when the thread spans streams), title (its first question), last_turn_at
    {prefix}:turns:{id}         list  one JSON object per turn, oldest first

Every change is one MULTI/EXEC transaction guarded by WATCH on the thread's hash, so a turn is never
appended to a thread that is being deleted, and the count always equals the length of the list.

On a Redis Cluster a transaction must stay within one slot, so there the thread's two keys carry its
id as a hash tag (`{prefix}:thread:{{id}}`, `{prefix}:turns:{{id}}`; on one server the names stay
as above, so existing threads keep working), and the index, a global key, is updated right after the
transaction: a crash in between leaves a thread that is found by its id and listed again at its
next turn.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from langgraph.checkpoint.base import BaseCheckpointSaver
from tempo.agent.errors import (
    InvalidThreadIdError,
    ThreadExistsError,
    ThreadNotFoundError,
    ThreadStreamMismatchError,
)
from tempo.agent.keyspace import RedisKeyspace
from tempo.inputs import THREAD_ID_PATTERN

DEFAULT_PREFIX = "tempo:threads"
_THREAD_ID = re.compile(THREAD_ID_PATTERN)  # the one rule, shared with every entry point (tempo.inputs)


def new_thread_id() -> str:
    """A short random id (12 hex digits: 48 bits), easy to type in `tempo ask --thread ID`."""
    return uuid.uuid4().hex[:12]


def check_thread_id(thread_id: str) -> str:
    if not isinstance(thread_id, str) or not _THREAD_ID.fullmatch(thread_id):
        raise InvalidThreadIdError(str(thread_id))
    return thread_id


@dataclass(frozen=True)
class Turn:
    """One answered question. `citations` are `Citation.to_dict()` objects (start/end seconds, segments)."""

    question: str
    standalone_question: str
    answer: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    asked_at: float = 0.0  # Unix seconds

    def to_dict(self) -> dict[str, Any]:
        """The shape of `tempo threads show --json`'s turns."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "citations": self.citations,
        }


@dataclass(frozen=True)
class ThreadRecord:
    id: str
    stream: str
    created: float  # Unix seconds
    updated: float  # Unix seconds, time of the last turn (or of creation)
    turns: int  # number of turns
    # Cross-stream (issue 22): the streams its last turn asked about (a follow-up keeps them unless it
    # names another), the first question as the thread's title, the time of the last turn (None: none yet).
    streams: tuple[str, ...] = ()
    title: str = ""
    last_turn_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream,
            "created": self.created,
            "updated": self.updated,
            "turns": self.turns,
            "streams": list(self.streams or (self.stream,)),
            "title": self.title,
            "last_turn_at": self.last_turn_at,
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ThreadStore(RedisKeyspace):
    """Conversation threads in Redis.

    Args:
        client: any `redis.Redis` (bytes or decoded responses both work).
        prefix: first component of every key.
        ttl: seconds a thread is kept after its last change; None keeps it until deleted. Use the
            same value as the checkpoint saver's so that transcript and graph state go together.
        checkpointer: the saver holding the graph state of these threads; `delete` clears it too.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
    ) -> None:
        self._bind_keyspace(client, prefix, ttl)
        self.checkpointer = checkpointer

    # ----- keys -------------------------------------------------------------------------------------

    def _index_key(self) -> str:
        return f"{self.prefix}:index"

    def _tag(self, thread_id: str) -> str:
        return f"{{{thread_id}}}" if self.cluster else thread_id

    def _thread_key(self, thread_id: str) -> str:
        return f"{self.prefix}:thread:{self._tag(thread_id)}"

    def _turns_key(self, thread_id: str) -> str:
        return f"{self.prefix}:turns:{self._tag(thread_id)}"

    def _index(self, pipe: Any, thread_id: str, now: float) -> None:
        """Queue the index update in the transaction (one server), or make it after (a cluster)."""
        if not self.cluster:
            pipe.zadd(self._index_key(), {thread_id: now})

    # ----- records ----------------------------------------------------------------------------------

    @staticmethod
    def _record(raw: Mapping[bytes | str, bytes | str]) -> ThreadRecord:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        streams = tuple(s for s in fields.get("streams", "").split(",") if s)
        return ThreadRecord(
            id=fields["id"],
            stream=fields["stream"],
            created=float(fields["created"]),
            updated=float(fields["updated"]),
            turns=int(fields["turns"]),
            streams=streams or (fields["stream"],),
            title=fields.get("title", ""),
            last_turn_at=float(fields["last_turn_at"]) if fields.get("last_turn_at") else None,
        )

    def create(self, stream: str, thread_id: str | None = None, streams: Sequence[str] = ()) -> ThreadRecord:
        """A new empty thread about `stream` (or about `streams`, `stream` being the first of them); a
        random id unless one is given (ThreadExistsError if taken)."""
        if not stream:
            raise ValueError("a thread needs a stream name")
        thread_id = check_thread_id(thread_id) if thread_id is not None else new_thread_id()
        key = self._thread_key(thread_id)
        now = time.time()
        record = ThreadRecord(
            id=thread_id, stream=stream, created=now, updated=now, turns=0, streams=tuple(streams) or (stream,)
        )
        fields = {"id": thread_id, "stream": stream, "created": str(now), "updated": str(now), "turns": "0",
                  "streams": ",".join(record.streams)}  # fmt: skip

        def create_once(pipe: redis.client.Pipeline) -> None:
            if pipe.exists(key):
                raise ThreadExistsError(thread_id)
            pipe.multi()
            pipe.hset(key, mapping=fields)
            self._index(pipe, thread_id, now)
            self._expire(pipe, [self._thread_key(thread_id), self._turns_key(thread_id)])

        self.client.transaction(create_once, key)
        if self.cluster:
            self.client.zadd(self._index_key(), {thread_id: now})
        return record

    def get(self, thread_id: str) -> ThreadRecord:
        raw = self.client.hgetall(self._thread_key(check_thread_id(thread_id)))
        if not raw:
            raise ThreadNotFoundError(thread_id)
        return self._record(raw)

    def exists(self, thread_id: str) -> bool:
        return bool(self.client.exists(self._thread_key(check_thread_id(thread_id))))

    def open(self, stream: str, thread_id: str | None = None) -> ThreadRecord:
        """The thread to continue: `thread_id`'s if it exists (it must be about `stream`), else a new one.

        This is what `tempo chat --stream S [--thread ID]` needs: an unknown id starts a thread with
        that id, a known one continues it, and continuing it about another stream is refused.
        """
        if thread_id is None:
            return self.create(stream)
        try:
            record = self.get(thread_id)
        except ThreadNotFoundError:
            try:
                return self.create(stream, thread_id)
            except ThreadExistsError:  # created by someone else in between
                record = self.get(thread_id)
        if record.stream != stream and stream not in record.streams:
            raise ThreadStreamMismatchError(thread_id, record.stream, stream)
        return record

    def open_streams(self, streams: Sequence[str], thread_id: str | None = None) -> ThreadRecord:
        """The thread to continue for a question across `streams` (a new one when `thread_id` is None or
        unknown): a thread may span streams, so the set of its latest question is recorded."""
        if not streams:
            raise ValueError("a thread needs a stream name")
        if thread_id is None:
            return self.create(streams[0], None, streams)
        try:
            record = self.get(thread_id)
        except ThreadNotFoundError:
            try:
                return self.create(streams[0], thread_id, streams)
            except ThreadExistsError:  # created by someone else in between
                record = self.get(thread_id)
        if tuple(streams) != record.streams:
            key = self._thread_key(thread_id)
            self.client.hset(key, mapping={"streams": ",".join(streams)})
            record = replace(record, streams=tuple(streams))
        return record

    def list(self, stream: str | None = None, limit: int | None = None) -> list[ThreadRecord]:
        """Threads, most recently updated first; only those about `stream` if given."""
        ids = [_text(i) for i in self.client.zrevrange(self._index_key(), 0, -1)]
        if not ids:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for thread_id in ids:
                pipe.hgetall(self._thread_key(thread_id))
            raws = pipe.execute()
        records: list[ThreadRecord] = []
        expired: list[str] = []
        for thread_id, raw in zip(ids, raws, strict=True):
            if not raw:  # the hash expired (ttl): drop the stale index entry
                expired.append(thread_id)
                continue
            record = self._record(raw)
            if stream is None or record.stream == stream:
                records.append(record)
        if expired:
            self.client.zrem(self._index_key(), *expired)
        records = records if limit is None else records[:limit]
        return self._with_titles(records)

    def _with_titles(self, records: list[ThreadRecord]) -> list[ThreadRecord]:
        """Threads from before titles were recorded get their first question as title (one round trip)."""
        untitled = [j for j, r in enumerate(records) if not r.title and r.turns > 0]
        if not untitled:
            return records
        with self.client.pipeline(transaction=False) as pipe:
            for j in untitled:
                pipe.lindex(self._turns_key(records[j].id), 0)
            firsts = pipe.execute()
        for j, raw in zip(untitled, firsts, strict=True):
            if raw:
                records[j] = replace(records[j], title=str(json.loads(raw).get("question", "")))
        return records

    # ----- turns ------------------------------------------------------------------------------------

    def append_turn(
        self,
        thread_id: str,
        question: str,
        standalone_question: str,
        answer: str,
        citations: Sequence[Mapping[str, Any]] = (),
    ) -> Turn:
        """Record an answered question at the end of the thread (atomically with its turn count)."""
        key = self._thread_key(check_thread_id(thread_id))
        now = time.time()
        turn = Turn(
            question=question,
            standalone_question=standalone_question,
            answer=answer,
            citations=[dict(c) for c in citations],
            asked_at=now,
        )
        # Serialise before the transaction so a non-JSON citation fails loudly and changes nothing.
        payload = json.dumps({**turn.to_dict(), "asked_at": now}, ensure_ascii=False)

        def append_once(pipe: redis.client.Pipeline) -> None:
            if not pipe.exists(key):
                raise ThreadNotFoundError(thread_id)
            pipe.multi()
            pipe.rpush(self._turns_key(thread_id), payload)
            pipe.hincrby(key, "turns", 1)
            pipe.hset(key, mapping={"updated": str(now), "last_turn_at": str(now)})
            pipe.hsetnx(key, "title", question)  # the first question names the thread
            self._index(pipe, thread_id, now)
            self._expire(pipe, [self._thread_key(thread_id), self._turns_key(thread_id)])

        self.client.transaction(append_once, key)
        if self.cluster:
            self.client.zadd(self._index_key(), {thread_id: now})
        return turn

    def turns(self, thread_id: str, last: int | None = None) -> list[Turn]:
        """The thread's turns, oldest first; only the `last` n if given (what the rewrite node reads)."""
        record = self.get(thread_id)
        if last is not None and last <= 0:
            return []
        start = 0 if last is None else -last
        raws = self.client.lrange(self._turns_key(record.id), start, -1)
        turns = []
        for raw in raws:
            data = json.loads(raw)
            turns.append(
                Turn(
                    question=data["question"],
                    standalone_question=data["standalone_question"],
                    answer=data["answer"],
                    citations=data["citations"],
                    asked_at=float(data.get("asked_at", 0.0)),
                )
            )
        return turns

    def show(self, thread_id: str) -> dict[str, Any]:
        """`{"id", "stream", "turns": [{"question", "standalone_question", "answer", "citations"}]}`."""
        record = self.get(thread_id)
        return {
            "id": record.id,
            "stream": record.stream,
            "streams": list(record.streams),
            "title": record.title,
            "last_turn_at": record.last_turn_at,
            "turns": [t.to_dict() for t in self.turns(thread_id)],
        }

    def delete(self, thread_id: str) -> bool:
        """Remove the thread's record and turns (and its checkpoints, given a checkpointer).

        Returns False if there was no such thread record.
        """
        key = self._thread_key(check_thread_id(thread_id))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key, self._turns_key(thread_id))
            if not self.cluster:
                pipe.zrem(self._index_key(), thread_id)
            removed = pipe.execute()[0]
        if self.cluster:
            self.client.zrem(self._index_key(), thread_id)
        if self.checkpointer is not None:
            self.checkpointer.delete_thread(thread_id)
        return bool(removed)

