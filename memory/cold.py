"""The cold tier: old segments' bulk (token heads, proxy clips) in append-only shards outside Redis.

A stream-day of memory is ~1.1 GiB in Redis, almost all of it token heads (33 KB per segment) and
proxy clips (≤ 24 KB). Past a stream's `RetentionPolicy.cold_after` seconds those two parts move to
shards, one per stream-hour, under a root that is a local directory (default: `cold/` in the data
dir) or any fsspec URL (`s3://bucket/tempo`, `memory://...`); Redis keeps the metadata, embedding,
file reference and a pointer, so RAM holds metadata and the recent past only.

Shard layout. `{root}/{stream number}/{hour:06d}.tcs` (hour = the segment's start seconds // 3600;
stream numbers are never reused, so a re-created stream never reads an old one's shards). A shard is
a sequence of records, each

    [magic b"TCR1"][kind: uint8 (1 tokens, 2 proxy)][segment index: int64][length: uint32]
    [crc32 of the payload: uint32][payload: `length` bytes]

A local shard is appended to under an exclusive flock and fsynced; object stores cannot append, so
there each move writes a new immutable part `{hour:06d}-{random}.tcs` of the same hour (a PUT lands
whole or not at all). The pointer Redis keeps (field `c` of the segment hash `g:{i}`) is
`1 {shard} {tok offset} {tok length} {tok crc} {proxy offset} {proxy length} {proxy crc}` (offsets
of the record headers, -1 when the part is absent), and the stream's root is its info field
`cold_root` (set once, by the first move).

Move protocol (`move_to_cold`), crash-safe and idempotent:
  1. read the segments' token heads and proxies from Redis;
  2. append them to their shards and fsync (nothing in Redis changes yet);
  3. one Lua script (memory/scripts.py COLD_SWAP, one stream's keys only) checks that each segment
     still holds exactly those bytes (SHA-1 in Redis), then deletes them and sets the pointer, moves
     their sizes from b_tok/b_prx to x_tok/x_prx, and advances the stream's `cold_next`.
A crash between 2 and 3 leaves orphan bytes in a shard and every segment still hot: a rerun writes
them again. A segment trimmed, re-committed or already moved meanwhile is left as it is.

Reads verify the record's header (magic, kind, index, length) and the payload's CRC-32 against both
the header and the pointer: a missing shard or a mismatch raises ColdShardMissingError /
ColdShardCorruptError (one sentence), never garbage. `ColdTier` keeps recently read payloads in a
small in-process LRU cache (bytes-bounded).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tempo.errors import redact_url
from tempo.memory import scripts
from tempo.memory.embedded import tempo_home
from tempo.memory.errors import (
    ColdShardCorruptError,
    ColdShardMissingError,
    ColdStorageError,
    UnknownStreamError,
    redis_errors,
)
from tempo.memory.records import SegmentRecord

if TYPE_CHECKING:
    from tempo.memory.store import RedisMemoryStore

# Schemes fsspec knows that are no place for shards (a traceback or a hang at the first move otherwise).
UNSUPPORTED_SCHEMES = frozenset({"ftp", "sftp", "ssh", "http", "https", "smb", "webhdfs", "git", "github", "zip",
                                 "tar", "libarchive", "reference", "dask", "jupyter", "dbfs"})
MAGIC = b"TCR1"
HEADER = struct.Struct("<4sBqII")  # magic, kind, segment index, payload length (bytes), crc32
TOKENS, PROXY = 1, 2
SHARD_SECONDS = 3600.0  # one shard per stream-hour (stream time)
_KIND_NAMES = {TOKENS: "token head", PROXY: "proxy clip"}
# What a pointer may name: `{stream number}/{hour:06d}.tcs` or, on object stores, `…-{12 hex}.tcs`.
_SHARD_NAME = re.compile(r"[0-9]{1,19}/[0-9]{6,}(-[0-9a-f]{12})?\.tcs")
MAX_PART_BYTES = 64 << 20  # a token head is ~33 KB and a proxy clip ≤ 28 KB: anything near this is damage
MAX_SHARD_BYTES = 1 << 46


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def is_local(root: str) -> bool:
    """A plain path or file:// URL: appended to in place; anything else goes through fsspec."""
    return "://" not in root or root.startswith("file://")


def _local_path(root: str) -> Path:
    return Path(root.removeprefix("file://")).expanduser()


def _open_regular(path: Path, flags: int) -> int:
    """os.open of a shard that must be a regular file: a FIFO, device or directory in its place is
    refused (ColdShardCorruptError) instead of blocking a reader forever; O_NONBLOCK only for the open."""
    fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ColdShardCorruptError(f"cold-tier shard {path} is not a regular file; refusing to use it")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class ColdPointer:
    """Where a cold segment's parts are: offsets of their record headers in one shard (-1: absent)."""

    shard: str  # relative to the stream's cold root
    tok_offset: int
    tok_length: int  # payload bytes
    tok_crc: int
    prx_offset: int
    prx_length: int
    prx_crc: int

    def encode(self) -> bytes:
        return (f"1 {self.shard} {self.tok_offset} {self.tok_length} {self.tok_crc} "
                f"{self.prx_offset} {self.prx_length} {self.prx_crc}").encode()

    @classmethod
    def parse(cls, data: bytes | str) -> ColdPointer:
        """The pointer Redis keeps, every field checked (ColdShardCorruptError in one sentence): a
        shard name as the mover writes them (never a path out of the root), each part either absent
        (offset -1, length 0) or at an offset ≥ 0 with a length up to MAX_PART_BYTES, CRCs of 32 bits."""
        try:
            text = data.decode("ascii") if isinstance(data, bytes) else str(data)
            version, shard, *numbers = text.split()
            to, tl, tc, po, pl, pc = (int(x) for x in numbers)
        except (ValueError, UnicodeDecodeError):
            raise ColdShardCorruptError(f"a cold-tier pointer in Redis is malformed ({str(data)[:80]!r})") from None
        if version != "1" or not _SHARD_NAME.fullmatch(shard):
            raise ColdShardCorruptError(f"a cold-tier pointer in Redis is malformed ({text[:80]!r})")
        for offset, length, crc in ((to, tl, tc), (po, pl, pc)):
            absent = offset == -1 and length == 0 and crc == 0
            if not absent and not (0 <= offset <= MAX_SHARD_BYTES and 0 < length <= MAX_PART_BYTES
                                   and 0 <= crc <= 0xFFFFFFFF):
                raise ColdShardCorruptError(f"a cold-tier pointer in Redis is out of range ({text[:80]!r})")
        return cls(shard, to, tl, tc, po, pl, pc)

    def part(self, kind: int) -> tuple[int, int, int]:
        """(offset, length, crc) of the tokens or the proxy."""
        if kind == TOKENS:
            return self.tok_offset, self.tok_length, self.tok_crc
        return self.prx_offset, self.prx_length, self.prx_crc


class ShardStore:
    """The append-only shards under one root: a local directory or an fsspec URL."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.local = is_local(root)
        self._fs: Any = None
        self._base = ""
        if not self.local:
            scheme = root.split("://", 1)[0].lower()
            if scheme in UNSUPPORTED_SCHEMES:
                raise ColdStorageError(f"cannot use {redact_url(root)!r} for the cold tier: {scheme}:// is not "
                                       "supported (use a directory, s3://, gs://, az://, or another object store)")
            try:
                import fsspec  # object stores and other filesystems (s3://, gs://, memory://, ...)

                self._fs, self._base = fsspec.core.url_to_fs(root)
            except Exception as exc:  # unknown protocol, its package missing, or it failed to connect
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ColdStorageError(f"cannot use {redact_url(root)!r} for the cold tier: {why}") from None
            self._base = self._base.rstrip("/")

    def _path(self, shard: str) -> str:
        """A path under the root (shard names from a pointer are checked first: `_local` / read_ranges)."""
        return f"{self._base}/{shard}"

    def _local(self, shard: str) -> Path:
        """The shard's file, which must stay inside the root (a link out of it is refused too)."""
        if not _SHARD_NAME.fullmatch(shard):
            raise ColdShardCorruptError(f"{shard[:80]!r} is not a cold-tier shard name")
        root = _local_path(self.root).resolve()
        path = (root / shard).resolve()
        if not path.is_relative_to(root):
            raise ColdShardCorruptError(f"cold-tier shard {shard} leads out of the cold root {root}")
        return path

    # ---- writes ---------------------------------------------------------------------------------
    def append(self, number: int, hour: int, parts: Sequence[tuple[int, int, bytes]]) -> tuple[str, list[int]]:
        """Write records (kind, segment index, payload) to stream `number`'s shard of `hour`, durably;
        returns the shard's name and each record's header offset."""
        blob = bytearray()
        offsets: list[int] = []
        for kind, index, payload in parts:
            offsets.append(len(blob))
            blob += HEADER.pack(MAGIC, kind, index, len(payload), crc32(payload))
            blob += payload
        try:
            if self.local:
                shard = f"{number}/{hour:06d}.tcs"
                base = self._append_local(shard, bytes(blob))
            else:
                # Object stores cannot append: each move is a new immutable part of the hour's shard.
                shard = f"{number}/{hour:06d}-{uuid.uuid4().hex[:12]}.tcs"
                self._fs.makedirs(self._path(str(number)), exist_ok=True)
                with self._fs.open(self._path(shard), "wb") as f:
                    f.write(bytes(blob))
                base = 0
        except OSError as exc:
            raise ColdStorageError(f"cannot write the cold tier under {self.root}: {exc}") from exc
        return shard, [base + o for o in offsets]

    def _append_local(self, shard: str, blob: bytes) -> int:
        _local_path(self.root).mkdir(parents=True, exist_ok=True)
        (_local_path(self.root) / shard).parent.mkdir(parents=True, exist_ok=True)
        path = self._local(shard)
        created = not path.exists()
        with open(_open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab") as f:
            # Several processes may move segments of one stream (ingest, a server, `memory gc`):
            # the lock makes "where the file ends" and our write one step.
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                offset = f.seek(0, os.SEEK_END)
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        if created:  # the new file's directory entry must survive a crash too
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return offset

    # ---- reads ----------------------------------------------------------------------------------
    def read_ranges(self, shard: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes [offset, offset + size) of `shard` per range; ColdShardMissingError if it is gone."""
        try:
            if self.local:
                out = []
                with open(_open_regular(self._local(shard), os.O_RDONLY), "rb") as f:
                    for offset, size in ranges:
                        f.seek(offset)
                        out.append(f.read(size))
                return out
            if not _SHARD_NAME.fullmatch(shard):
                raise ColdShardCorruptError(f"{shard[:80]!r} is not a cold-tier shard name")
            return [self._fs.cat_file(self._path(shard), start=o, end=o + n) for o, n in ranges]
        except FileNotFoundError as exc:
            raise ColdShardMissingError(
                f"cold-tier shard {shard} is missing from {self.root}; its segments' token heads and "
                "proxies cannot be read (restore the shard, or delete the stream)"
            ) from exc
        except OSError as exc:
            raise ColdStorageError(f"cannot read cold-tier shard {shard} under {self.root}: {exc}") from exc

    # ---- removal --------------------------------------------------------------------------------
    def shards(self, number: int) -> list[str]:
        """Names of stream `number`'s shards (relative to the root), sorted."""
        if self.local:
            folder = _local_path(self.root) / str(number)
            return sorted(f"{number}/{p.name}" for p in folder.glob("*.tcs")) if folder.is_dir() else []
        try:
            found = self._fs.ls(self._path(str(number)), detail=False)
        except FileNotFoundError:
            return []
        return sorted(f"{number}/{str(p).rstrip('/').rsplit('/', 1)[-1]}" for p in found if str(p).endswith(".tcs"))

    def remove_before(self, number: int, hour: int) -> int:
        """Delete stream `number`'s shards of hours before `hour` (all their segments are gone)."""
        gone = [s for s in self.shards(number) if int(s.split("/")[1].split(".")[0].split("-")[0]) < hour]
        for shard in gone:
            if self.local:
                (_local_path(self.root) / shard).unlink(missing_ok=True)
            else:
                self._fs.rm(self._path(shard))
        return len(gone)

    def remove_stream(self, number: int) -> None:
        """Delete every shard of stream `number`."""
        if self.local:
            shutil.rmtree(_local_path(self.root) / str(number), ignore_errors=True)
        elif self._fs.exists(self._path(str(number))):
            self._fs.rm(self._path(str(number)), recursive=True)


class ColdTier:
    """Reads cold parts through per-root shard stores and a bytes-bounded in-process LRU cache.

    Thread-safe. Entries are keyed by (root, shard, offset): shards are append-only and a new
    stream never reuses a number, so a cached payload can never go stale.
    """

    def __init__(self, *, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._stores: dict[str, ShardStore] = {}
        self._cache: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def shards(self, root: str) -> ShardStore:
        with self._lock:
            store = self._stores.get(root)
        if store is None:
            store = ShardStore(root)
            with self._lock:
                self._stores[root] = store
        return store

    def read(self, stream: str, root: str, wanted: Sequence[tuple[int, ColdPointer, int]]) -> list[bytes]:
        """Payloads of (segment index, pointer, kind) in order; b"" for a part the pointer lacks."""
        out: list[bytes | None] = [None] * len(wanted)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for j, (_, pointer, kind) in enumerate(wanted):
                offset = pointer.part(kind)[0]
                if offset < 0:
                    out[j] = b""
                    continue
                data = self._cache.get((root, pointer.shard, offset))
                if data is None:
                    todo.setdefault(pointer.shard, []).append(j)
                else:
                    self._cache.move_to_end((root, pointer.shard, offset))
                    out[j] = data
        self.hits += sum(1 for x in out if x)
        store = self.shards(root) if todo else None
        for shard, rows in todo.items():
            assert store is not None
            ranges = [(wanted[j][1].part(wanted[j][2])[0], HEADER.size + wanted[j][1].part(wanted[j][2])[1])
                      for j in rows]
            for j, raw in zip(rows, store.read_ranges(shard, ranges), strict=True):
                index, pointer, kind = wanted[j]
                offset, length, crc = pointer.part(kind)
                payload = _verified(raw, stream, index, kind, shard, length, crc)
                out[j] = payload
                with self._lock:
                    self._put((root, shard, offset), payload)
            self.misses += len(rows)
        return [b"" if x is None else x for x in out]

    def _put(self, key: tuple[str, str, int], payload: bytes) -> None:
        if key in self._cache or len(payload) > self.max_bytes:
            return
        self._cache[key] = payload
        self.bytes += len(payload)
        while self.bytes > self.max_bytes:
            _, old = self._cache.popitem(last=False)
            self.bytes -= len(old)


def _verified(raw: bytes, stream: str, index: int, kind: int, shard: str, length: int, crc: int) -> bytes:
    """The payload of one record, checked against its header and its pointer."""
    where = f"the {_KIND_NAMES.get(kind, 'part')} of segment {index} of stream {stream!r} in cold-tier shard {shard}"
    if len(raw) < HEADER.size + length:
        raise ColdShardCorruptError(f"{where} is cut short (the shard was truncated)")
    magic, k, i, n, c = HEADER.unpack_from(raw)
    payload = raw[HEADER.size : HEADER.size + length]
    if magic != MAGIC or k != kind or i != index or n != length or c != crc or crc32(payload) != crc:
        raise ColdShardCorruptError(f"{where} fails its checksum (the shard is corrupt)")
    return payload


def default_root(home: Path | str | None = None) -> str:
    """The cold tier's root when a policy names none: `cold/` in the data dir."""
    return str(tempo_home(home).resolve() / "cold")


def cold_location(url: str | None, home: Path | str | None = None) -> str:
    """The root a policy stores: `url` checked (ColdStorageError for an unusable one) and, for a local
    directory, made absolute, so every process finds the same shards; None: the default root."""
    if url is None:
        return default_root(home)
    if is_local(url):
        root = str(_local_path(url).resolve())
        check_writable(root)
        return root
    ShardStore(url)  # an unknown scheme, or its fsspec package missing: one sentence now, not later
    return url


def check_writable(root: str) -> None:
    """ColdStorageError (one sentence) unless a local cold root can be created and written: checked
    when an ingest starts, not at the first retention pass (which would only warn, every pass)."""
    path = _local_path(root)
    probe = path / f".tempo-write-check-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ColdStorageError(f"cannot write the cold tier under {root}: {exc.strerror or exc}") from None


# ---- the mover ----------------------------------------------------------------------------------------
def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@dataclass(frozen=True)
class ColdMove:
    """What one `move_to_cold` call did."""

    moved: int  # segments whose parts went to shards
    skipped: int  # absent (trimmed), already cold, or changed meanwhile: left as they were
    bytes: int  # payload bytes moved out of Redis


@redis_errors
def cold_position(store: RedisMemoryStore, name: str) -> int:
    """The first segment index of `name` not yet considered by the mover (its `cold_next` pointer)."""
    return int(store.client.hget(store.keys.info(name), "cold_next") or 0)


@redis_errors
def cold_root(store: RedisMemoryStore, name: str) -> str | None:
    """The root the stream's shards are under (None: nothing moved yet)."""
    raw = store.client.hget(store.keys.info(name), "cold_root")
    return None if raw is None else raw.decode()


MOVER_LEASE = 120.0  # seconds a mover may hold a stream (a pass moves at most 64 × 32 segments)


@contextlib.contextmanager
def mover_lease(store: RedisMemoryStore, name: str) -> Iterator[bool]:
    """Whether this process may move the stream's segments now: one mover per stream at a time
    (ingest, servers, workers and `memory gc` all run retention), so two never write the same
    segments' bytes twice. The lease expires by itself if its holder dies."""
    key = f"{store.keys.base(name)}coldlock"
    token = uuid.uuid4().hex
    held = bool(store.client.set(key, token, nx=True, px=int(MOVER_LEASE * 1000)))
    try:
        yield held
    finally:
        if held:
            store.client.register_script(scripts.RELEASE)(keys=[key], args=[token])


@redis_errors
def move_to_cold(
    store: RedisMemoryStore, name: str, indices: Sequence[int], root: str, *, advance_to: int | None = None
) -> ColdMove:
    """Move the token heads and proxy clips of segments `indices` (ascending) to shards under `root`
    (the stream's recorded root wins when it has one), following the protocol in the module doc.
    `advance_to`: where the stream's `cold_next` pointer goes (never backwards); default after the
    last index."""
    keys = store.keys
    info_key = keys.info(name)
    number, recorded = store.client.hmget(info_key, "number", "cold_root")
    if number is None:
        raise UnknownStreamError(name, store.stream_names())
    root = recorded.decode() if recorded is not None else root
    indices = [int(i) for i in indices]
    pipe = store.client.pipeline(transaction=False)
    for i in indices:
        pipe.hmget(keys.segment(name, i), "m", "p", "c")
        pipe.get(keys.tokens(name, i))
    raw = pipe.execute()
    # 1. What each segment holds now (skip absent and already cold ones).
    todo: list[tuple[int, int, bytes, bytes]] = []  # (index, hour, tokens, proxy)
    for j, i in enumerate(indices):
        (meta, proxy, pointer), tokens = raw[2 * j], raw[2 * j + 1]
        if meta is None or pointer is not None:
            continue
        start = float(SegmentRecord.parse_meta(meta)["s"])  # seconds
        todo.append((i, int(start // SHARD_SECONDS), tokens or b"", proxy or b""))
    # 2. Shard bytes first, durably, one write per stream-hour.
    shard_store = store.cold.shards(root)
    pointers: dict[int, ColdPointer] = {}
    by_hour: dict[int, list[tuple[int, int, bytes, bytes]]] = {}
    for item in todo:
        by_hour.setdefault(item[1], []).append(item)
    for hour, items in by_hour.items():
        parts: list[tuple[int, int, bytes]] = []
        for i, _, tokens, proxy in items:
            if tokens:
                parts.append((TOKENS, i, tokens))
            if proxy:
                parts.append((PROXY, i, proxy))
        shard, offsets = shard_store.append(int(number), hour, parts) if parts else ("", [])
        at = iter(offsets)
        for i, _, tokens, proxy in items:
            to = next(at) if tokens else -1
            po = next(at) if proxy else -1
            pointers[i] = ColdPointer(shard, to, len(tokens), crc32(tokens) if tokens else 0,
                                      po, len(proxy), crc32(proxy) if proxy else 0)
    # 3. One atomic swap: each segment still holding those bytes gets its pointer.
    swap_keys = [info_key]
    nxt = advance_to if advance_to is not None else (indices[-1] + 1 if indices else 0)
    args: list[Any] = [root, nxt, int(number)]
    for i, _, tokens, proxy in todo:
        swap_keys += [keys.segment(name, i), keys.tokens(name, i)]
        args += [pointers[i].encode(), _sha1(tokens), _sha1(proxy)]
    status = store.client.register_script(scripts.COLD_SWAP)(keys=swap_keys, args=args)
    moved = [int(s) == 1 for s in status]
    nbytes = sum(len(t) + len(p) for (_, _, t, p), ok in zip(todo, moved, strict=True) if ok)
    return ColdMove(sum(moved), len(indices) - sum(moved), nbytes)

