"""LangGraph checkpoints on plain Redis: hashes and sorted sets, no RedisJSON or RediSearch.

`langgraph-checkpoint-redis` needs the RedisJSON and RediSearch modules; the Redis servers we run
(embedded `redis-server`, plain Redis in docker-compose) have neither. This saver keeps the same
contract as LangGraph's own savers (see `langgraph.checkpoint.memory.InMemorySaver`) with ordinary
commands only.

Layout, per thread T and checkpoint namespace N (both percent-encoded so that ':' in a namespace such
as "child:1b2c|grand:3d4e" cannot make two keys collide; `{T}` is a hash tag so every key of a
thread lives in one Redis Cluster slot and MULTI/EXEC works there too):

    {prefix}:threads                    set   thread ids (for `list(None)`)
    {prefix}:{T}:namespaces             set   namespaces used by the thread
    {prefix}:{T}:ns={N}:ids                zset  checkpoint ids, all scores 0: lexicographic order is
                                              time order, since ids are UUIDv6 strings of one length
    {prefix}:{T}:ns={N}:checkpoints        hash  checkpoint id -> framed (parent id, checkpoint, metadata)
    {prefix}:{T}:ns={N}:blobs              hash  "channel\\0version" -> framed channel value
    {prefix}:{T}:ns={N}:writes             hash  "checkpoint id\\0task id\\0idx" -> framed pending write
    {prefix}:{T}:ns={N}:write_keys         zset  the field names of `writes`, scores 0, so the writes of
                                              one checkpoint are one ZRANGEBYLEX away

Channel values are stored once per (channel, version), as LangGraph's savers do: a checkpoint only
names versions, and `put` receives just the channels whose version changed (`new_versions`).
Values go through the saver's `serde` (`dumps_typed` / `loads_typed`), so whatever a graph can keep
in memory it can keep here. Every write is one MULTI/EXEC transaction. With `ttl` set, every key of a
thread expires `ttl` seconds after the thread's last write (a sliding expiry, refreshed on each put).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from tempo.agent.keyspace import RedisKeyspace

DEFAULT_PREFIX = "tempo:lg"

P = ParamSpec("P")
R = TypeVar("R")

# How many checkpoint ids `list` fetches per round trip while it filters on metadata.
_LIST_BATCH = 64


def _pack(header: list[Any], *payloads: bytes) -> bytes:
    """One Redis value from a small JSON header and raw byte payloads (lengths go in the header)."""
    head = json.dumps([header, [len(p) for p in payloads]], separators=(",", ":"))
    # json.dumps escapes control characters, so the header holds no raw newline.
    return head.encode() + b"\n" + b"".join(payloads)


def _unpack(data: bytes) -> tuple[list[Any], list[bytes]]:
    cut = data.index(b"\n")
    header, lengths = json.loads(data[:cut])
    payloads: list[bytes] = []
    pos = cut + 1
    for n in lengths:
        payloads.append(data[pos : pos + n])
        pos += n
    return header, payloads


def _in_worker_thread(
    method: Callable[Concatenate[Any, P], R],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """The async twin of a sync saver method: the same call, same signature, in the default executor.

    redis-py's sync client is thread-safe (one connection per call from its pool), so the twin never
    blocks the event loop; the method is looked up on the instance, so an override applies to both.
    """
    name = method.__name__

    async def twin(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(getattr(self, name), *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"a{name}"
    twin.__doc__ = f"`{name}` in a worker thread."
    return twin


def _enc(part: str) -> str:
    """A key component that cannot contain ':' or braces (reversible percent-encoding)."""
    return quote(part, safe="")


class RedisCheckpointSaver(RedisKeyspace, BaseCheckpointSaver[str]):
    """LangGraph `BaseCheckpointSaver` on plain Redis commands.

    Args:
        client: a `redis.Redis` made with `decode_responses=False` (values are bytes).
        prefix: first component of every key, so several apps can share one Redis database.
        ttl: seconds a thread is kept after its last write; None keeps it until `delete_thread`.
        serde: LangGraph serializer; the default is LangGraph's `JsonPlusSerializer`.

    Use `RedisCheckpointSaver.from_url("redis://...")` to build one from a URL.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisCheckpointSaver needs a Redis client with decode_responses=False")
        self._bind_keyspace(client, prefix, ttl)

    # ----- keys -------------------------------------------------------------------------------------

    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    def _thread_base(self, thread_id: str) -> str:
        return f"{self.prefix}:{{{_enc(thread_id)}}}"

    def _namespaces_key(self, thread_id: str) -> str:
        return f"{self._thread_base(thread_id)}:namespaces"

    def _ns_keys(self, thread_id: str, ns: str) -> dict[str, str]:
        # "ns=" + encoded namespace: the root namespace "" becomes "ns=", distinct from every other.
        base = f"{self._thread_base(thread_id)}:ns={_enc(ns)}"
        return {
            "ids": f"{base}:ids",
            "checkpoints": f"{base}:checkpoints",
            "blobs": f"{base}:blobs",
            "writes": f"{base}:writes",
            "write_keys": f"{base}:write_keys",
        }

    # ----- helpers ----------------------------------------------------------------------------------

    def _list_thread(self, pipe: Any, thread_id: str) -> None:
        """Add the thread to the global set: inside the transaction `pipe` on one server; on a cluster
        (called again with pipe None) right after it."""
        if (pipe is None) == self.cluster:
            (self.client if pipe is None else pipe).sadd(self._threads_key(), thread_id)

    def _namespaces(self, thread_id: str) -> list[str]:
        return sorted(m.decode() for m in self.client.smembers(self._namespaces_key(thread_id)))

    def _refresh_ttl(self, pipe: redis.client.Pipeline, thread_id: str, namespaces: Sequence[str]) -> None:
        keys = [self._ns_keys(thread_id, ns).values() for ns in namespaces]
        self._expire(pipe, [self._namespaces_key(thread_id), *itertools.chain.from_iterable(keys)])

    def _decode_blob(self, blob: bytes | None) -> tuple[bool, Any]:
        if blob is None:
            return False, None
        (type_,), (data,) = _unpack(blob)
        if type_ == "empty":  # the channel existed at that version but held no value
            return False, None
        return True, self.serde.loads_typed((type_, data))

    def _decode_writes(self, raw: Sequence[bytes | None]) -> list[PendingWrite]:
        rows: list[tuple[tuple[str, str, int], PendingWrite]] = []
        for blob in raw:
            if blob is None:  # expired or deleted between two reads
                continue
            (task_id, channel, idx, task_path, type_), (data,) = _unpack(blob)
            value = self.serde.loads_typed((type_, data))
            rows.append((writes_sort_key(task_path, task_id, idx), (task_id, channel, value)))
        rows.sort(key=lambda row: row[0])
        return [write for _, write in rows]

    def _tuples(
        self,
        thread_id: str,
        ns: str,
        items: Sequence[tuple[str, bytes]],
        config: RunnableConfig | None = None,
    ) -> list[CheckpointTuple]:
        """Checkpoint tuples for (checkpoint id, stored record) pairs of one namespace.

        Two round trips for the whole batch: channel values and write names together, then the writes.
        """
        keys = self._ns_keys(thread_id, ns)
        decoded = []
        for checkpoint_id, record in items:
            (parent_id, ck_type, md_type), (ck_data, md_data) = _unpack(record)
            checkpoint: Checkpoint = self.serde.loads_typed((ck_type, ck_data))
            metadata: CheckpointMetadata = self.serde.loads_typed((md_type, md_data))
            decoded.append((checkpoint_id, parent_id, checkpoint, metadata))

        with self.client.pipeline(transaction=False) as pipe:
            for checkpoint_id, _, checkpoint, _ in decoded:
                versions = checkpoint["channel_versions"]
                if versions:
                    pipe.hmget(keys["blobs"], [f"{ch}\x00{v}" for ch, v in versions.items()])
                pipe.zrangebylex(
                    keys["write_keys"], f"[{checkpoint_id}\x00".encode(), f"({checkpoint_id}\x01".encode()
                )
            replies = iter(pipe.execute())
        values_by_id: dict[str, dict[str, Any]] = {}
        write_fields: dict[str, list[bytes]] = {}
        for checkpoint_id, _, checkpoint, _ in decoded:
            versions = checkpoint["channel_versions"]
            values: dict[str, Any] = {}
            if versions:
                for ch, blob in zip(versions, next(replies), strict=True):
                    present, value = self._decode_blob(blob)
                    if present:
                        values[ch] = value
            values_by_id[checkpoint_id] = values
            write_fields[checkpoint_id] = next(replies)

        with_writes = [cid for cid, fields in write_fields.items() if fields]
        writes_by_id: dict[str, list[PendingWrite]] = {}
        if with_writes:
            with self.client.pipeline(transaction=False) as pipe:
                for checkpoint_id in with_writes:
                    pipe.hmget(keys["writes"], write_fields[checkpoint_id])
                for checkpoint_id, raw in zip(with_writes, pipe.execute(), strict=True):
                    writes_by_id[checkpoint_id] = self._decode_writes(raw)

        tuples = []
        for checkpoint_id, parent_id, checkpoint, metadata in decoded:
            own_config: RunnableConfig = config or {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
            }
            parent_config: RunnableConfig | None = (
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
                if parent_id
                else None
            )
            tuples.append(
                CheckpointTuple(
                    config=own_config,
                    checkpoint={**checkpoint, "channel_values": values_by_id[checkpoint_id]},
                    metadata=metadata,
                    parent_config=parent_config,
                    pending_writes=writes_by_id.get(checkpoint_id, []),
                )
            )
        return tuples

    @staticmethod
    def _metadata_matches(metadata: CheckpointMetadata, filter: dict[str, Any] | None) -> bool:
        if not filter:
            return True
        return all(metadata.get(key) == value for key, value in filter.items())  # type: ignore[misc]

    # ----- BaseCheckpointSaver: reads ---------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by `config`'s `checkpoint_id`, else the latest of its thread and namespace."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        keys = self._ns_keys(thread_id, ns)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            record = self.client.hget(keys["checkpoints"], checkpoint_id)
            if record is None:
                return None
            return self._tuples(thread_id, ns, [(checkpoint_id, record)], config)[0]
        latest = self.client.zrevrangebylex(keys["ids"], b"+", b"-", start=0, num=1)
        if not latest:
            return None
        checkpoint_id = latest[0].decode()
        record = self.client.hget(keys["checkpoints"], checkpoint_id)
        if record is None:  # deleted or expired between the two reads
            return None
        return self._tuples(thread_id, ns, [(checkpoint_id, record)])[0]

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (per thread and namespace), filtered like LangGraph's savers.

        `config` narrows to a thread (and, if given, a namespace and a checkpoint id); `filter` keeps
        checkpoints whose metadata has every given key equal to the given value; `before` keeps ids
        strictly older than its checkpoint id; `limit` caps the number yielded.
        """
        if limit is not None and limit <= 0:
            return
        remaining = limit
        if config is not None:
            configurable = config["configurable"]
            thread_ids = [str(configurable["thread_id"])]
            only_ns: str | None = configurable.get("checkpoint_ns")
            only_id = get_checkpoint_id(config)
        else:
            thread_ids = sorted(m.decode() for m in self.client.smembers(self._threads_key()))
            only_ns, only_id = None, None
        before_id = get_checkpoint_id(before) if before else None
        for thread_id in thread_ids:
            namespaces = [only_ns] if only_ns is not None else self._namespaces(thread_id)
            for ns in namespaces:
                for item in self._list_namespace(thread_id, ns, only_id, before_id, filter, remaining):
                    yield item
                    if remaining is not None:
                        remaining -= 1
                        if remaining <= 0:
                            return

    def _list_namespace(
        self,
        thread_id: str,
        ns: str,
        only_id: str | None,
        before_id: str | None,
        filter: dict[str, Any] | None,
        limit: int | None,
    ) -> Iterator[CheckpointTuple]:
        keys = self._ns_keys(thread_id, ns)
        if only_id is not None:
            if before_id is not None and only_id >= before_id:
                return
            record = self.client.hget(keys["checkpoints"], only_id)
            if record is not None:
                (tup,) = self._tuples(thread_id, ns, [(only_id, record)])
                if self._metadata_matches(tup.metadata, filter):
                    yield tup
            return
        upper: bytes = b"(" + before_id.encode() if before_id else b"+"
        wanted = limit
        while True:
            # Fetch no more than the caller can still take: `list(limit=1)` decodes one checkpoint.
            num = _LIST_BATCH if wanted is None else max(1, min(_LIST_BATCH, wanted))
            ids = self.client.zrevrangebylex(keys["ids"], upper, b"-", start=0, num=num)
            if not ids:
                return
            records = self.client.hmget(keys["checkpoints"], ids)
            batch: list[tuple[str, bytes]] = []
            for raw_id, record in zip(ids, records, strict=True):
                if record is None:
                    continue
                if filter:
                    # Metadata first: decoding it alone is cheap; skip the blobs of non-matching ones.
                    (_, _, md_type), (_, md_data) = _unpack(record)
                    if not self._metadata_matches(self.serde.loads_typed((md_type, md_data)), filter):
                        continue
                batch.append((raw_id.decode(), record))
            if batch:
                tuples = self._tuples(thread_id, ns, batch)
                if wanted is not None:
                    wanted -= len(tuples)
                yield from tuples
            if len(ids) < num or (wanted is not None and wanted <= 0):
                return
            upper = b"(" + ids[-1]

    # ----- BaseCheckpointSaver: writes --------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in `new_versions`; returns its config."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        parent_id = configurable.get("checkpoint_id")
        keys = self._ns_keys(thread_id, ns)

        c = dict(checkpoint)
        values: dict[str, Any] = c.pop("channel_values")
        ck_type, ck_data = self.serde.dumps_typed(c)
        md_type, md_data = self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
        record = _pack([parent_id, ck_type, md_type], ck_data, md_data)
        blobs: dict[str, bytes] = {}
        for channel, version in new_versions.items():
            if channel in values:
                type_, data = self.serde.dumps_typed(values[channel])
            else:
                type_, data = "empty", b""
            blobs[f"{channel}\x00{version}"] = _pack([type_], data)

        namespaces = sorted(set(self._namespaces(thread_id)) | {ns}) if self.ttl_ms is not None else []
        with self.client.pipeline(transaction=True) as pipe:
            if blobs:
                pipe.hset(keys["blobs"], mapping=blobs)
            pipe.hset(keys["checkpoints"], checkpoint["id"], record)
            pipe.zadd(keys["ids"], {checkpoint["id"]: 0})
            pipe.sadd(self._namespaces_key(thread_id), ns)
            self._list_thread(pipe, thread_id)
            self._refresh_ttl(pipe, thread_id, namespaces)
            pipe.execute()
        self._list_thread(None, thread_id)
        return {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the checkpoint in `config`.

        Regular writes are keyed by (task id, position) and kept on first write: a task replayed after a
        crash does not overwrite them. Special writes (error, interrupt, resume, scheduled) use the fixed
        negative indices of `WRITES_IDX_MAP` and replace the previous one, as LangGraph's savers do.
        """
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        keys = self._ns_keys(thread_id, ns)
        with self.client.pipeline(transaction=True) as pipe:
            for position, (channel, value) in enumerate(writes):
                idx = WRITES_IDX_MAP.get(channel, position)
                field = f"{checkpoint_id}\x00{task_id}\x00{idx}"
                type_, data = self.serde.dumps_typed(value)
                blob = _pack([task_id, channel, idx, task_path, type_], data)
                if idx >= 0:
                    pipe.hsetnx(keys["writes"], field, blob)
                else:
                    pipe.hset(keys["writes"], field, blob)
                pipe.zadd(keys["write_keys"], {field: 0})
            pipe.sadd(self._namespaces_key(thread_id), ns)
            self._list_thread(pipe, thread_id)
            self._refresh_ttl(pipe, thread_id, [ns])
            pipe.execute()
        self._list_thread(None, thread_id)

    def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint, channel value and pending write of `thread_id`, in all namespaces."""
        thread_id = str(thread_id)
        ns_key = self._namespaces_key(thread_id)

        def delete(pipe: redis.client.Pipeline) -> None:
            # WATCH on the namespace set: a namespace added meanwhile restarts the transaction.
            namespaces = [m.decode() for m in pipe.smembers(ns_key)]
            pipe.multi()
            for ns in namespaces:
                pipe.delete(*self._ns_keys(thread_id, ns).values())
            pipe.delete(ns_key)
            if not self.cluster:
                pipe.srem(self._threads_key(), thread_id)

        self.client.transaction(delete, ns_key)
        if self.cluster:
            self.client.srem(self._threads_key(), thread_id)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, channel value and pending write of one thread into another.

        Entries the target already has are kept (checkpoints are immutable, so an id present in both
        is the same checkpoint); the whole parent chain comes along, as LangGraph requires.
        """
        source, target = str(source_thread_id), str(target_thread_id)
        if source == target:
            return
        src_ns_key = self._namespaces_key(source)

        Entries = list[tuple[str, Any]]  # (target key, source value) per hash or sorted set

        def read(pipe: Any, namespaces: list[str]) -> tuple[Entries, Entries]:
            hashes = [(self._ns_keys(target, ns)[role], pipe.hgetall(self._ns_keys(source, ns)[role]))
                      for ns in namespaces for role in ("checkpoints", "blobs", "writes")]
            zsets = [(self._ns_keys(target, ns)[role], pipe.zrange(self._ns_keys(source, ns)[role], 0, -1))
                     for ns in namespaces for role in ("ids", "write_keys")]
            return hashes, zsets

        def write(pipe: Any, namespaces: list[str], hashes: Entries, zsets: Entries) -> None:
            for key, mapping in hashes:
                for field, value in mapping.items():
                    pipe.hsetnx(key, field, value)
            for key, members in zsets:
                if members:
                    pipe.zadd(key, dict.fromkeys(members, 0))
            if namespaces:
                pipe.sadd(self._namespaces_key(target), *namespaces)
                self._list_thread(pipe, target)
            self._refresh_ttl(pipe, target, namespaces)

        if self.cluster:
            # The two threads live on different slots, which no transaction spans: a snapshot of the
            # source read in one MULTI on its slot, then written in one MULTI on the target's. What the
            # source gains meanwhile is left out, as if the copy had run just before it.
            namespaces = self._namespaces(source)
            with self.client.pipeline(transaction=True) as pipe:
                hashes, zsets = read(pipe, namespaces)
                values = iter(pipe.execute())
            hashes = [(key, next(values)) for key, _ in hashes]
            zsets = [(key, next(values)) for key, _ in zsets]
            with self.client.pipeline(transaction=True) as pipe:
                write(pipe, namespaces, hashes, zsets)
                pipe.execute()
            if namespaces:
                self._list_thread(None, target)
            return

        def copy(pipe: redis.client.Pipeline) -> None:
            namespaces = sorted(m.decode() for m in pipe.smembers(src_ns_key))
            hashes, zsets = read(pipe, namespaces)  # immediate: WATCH mode until multi()
            pipe.multi()
            write(pipe, namespaces, hashes, zsets)

        self.client.transaction(copy, src_ns_key)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Versions as LangGraph's in-memory saver makes them: zero-padded counter + random suffix.

        Strings compare in the order of the counter; the random part keeps versions written by two
        concurrent forks of one parent apart.
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # ----- async variants: the sync client in a worker thread ---------------------------------------

    aget_tuple = _in_worker_thread(get_tuple)
    aput = _in_worker_thread(put)
    aput_writes = _in_worker_thread(put_writes)
    adelete_thread = _in_worker_thread(delete_thread)
    acopy_thread = _in_worker_thread(copy_thread)

    async def alist(self, config: RunnableConfig | None, **options: Any) -> AsyncIterator[CheckpointTuple]:
        """`list` with the same keyword options (filter, before, limit) in a worker thread; all its items
        are read there before the first is yielded."""
        for item in await asyncio.to_thread(lambda: list(self.list(config, **options))):
            yield item
