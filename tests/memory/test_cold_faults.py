"""Hostile cold tiers: a FIFO in place of a shard, corrupt or escaping pointers, an unwritable or
unsupported --cold-url. Each is one typed error in one sentence, never a hang, a traceback or a read
outside the cold root."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from tempo.memory.cold import ColdPointer, ShardStore, cold_location, move_to_cold
from tempo.memory.errors import ColdShardCorruptError, ColdStorageError

LIVE = {"uri": "rtsp://cam/1", "kind": "network", "live": True}


def _cold_stream(store, records, root: Path, n: int = 4) -> ColdPointer:
    store.create_stream("cam", LIVE, records.SETTINGS)
    store.put_segments([dataclasses.replace(records.make_record("cam", i), file_ref=None,
                                            proxy=np.random.default_rng(i).bytes(5000)) for i in range(n)])
    assert move_to_cold(store, "cam", range(n), str(root)).moved == n
    return ColdPointer.parse(store.client.hget(store.keys.segment("cam", 1), "c"))


def _within(seconds: float, call) -> BaseException | None:
    """What `call` raised (None: returned), asserting it finished within `seconds`."""
    out: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            out.append(None)
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still running after {seconds} s (it hangs)"
    return out[0]


def test_a_fifo_in_place_of_a_shard_is_refused_not_waited_on(store, records, tmp_path: Path) -> None:
    pointer = _cold_stream(store, records, tmp_path / "cold")
    path = tmp_path / "cold" / pointer.shard
    path.unlink()
    os.mkfifo(path)
    raised = _within(10.0, lambda: store.get_segments("cam", [1]))
    assert isinstance(raised, ColdShardCorruptError) and "not a regular file" in str(raised)
    raised = _within(10.0, lambda: ShardStore(str(tmp_path / "cold")).append(1, 0, [(1, 9, b"x")]))
    assert isinstance(raised, ColdStorageError)  # the mover neither hangs nor writes into it


@pytest.mark.parametrize("pointer", [
    b"", b"   ", b"garbage", b"1 1/000000.tcs", b"1 1/000000.tcs a b c d e f", b"2 1/000000.tcs 0 10 0 -1 0 0",
    b"1 1/000000.tcs 0 99999999999 0 -1 0 0",  # a huge length
    b"1 1/000000.tcs -5 10 0 -1 0 0",  # a negative offset (was read as "absent": the anchor silently dropped)
    b"1 1/000000.tcs 0 10 99999999999 -1 0 0",  # a crc over 32 bits
    b"1 ../../etc/passwd 0 10 0 -1 0 0", b"1 /etc/passwd 0 10 0 -1 0 0", b"1 1/../../x.tcs 0 10 0 -1 0 0",
    b"\xff\xfe 1", b"1 1/000000.tcs 0 10 0 -1 0 0 7",
])
def test_a_corrupt_pointer_is_a_typed_error(store, records, tmp_path: Path, pointer: bytes) -> None:
    _cold_stream(store, records, tmp_path / "cold")
    store.client.hset(store.keys.segment("cam", 1), "c", pointer)
    with pytest.raises(ColdShardCorruptError) as raised:
        store.get_segments("cam", [1])
    assert "\n" not in str(raised.value)
    with pytest.raises(ColdShardCorruptError):
        store.token_heads("cam", [0, 1, 2], 2, records.DIM)
    assert store.get_segments("cam", [2])[0].tokens is not None  # the others still read


def test_a_shard_link_out_of_the_cold_root_is_refused(store, records, tmp_path: Path) -> None:
    pointer = _cold_stream(store, records, tmp_path / "cold")
    outside = tmp_path / "outside.tcs"
    (tmp_path / "cold" / pointer.shard).rename(outside)
    (tmp_path / "cold" / pointer.shard).symlink_to(outside)
    with pytest.raises(ColdShardCorruptError, match="leads out of the cold root"):
        store.get_segments("cam", [1])


def test_an_unwritable_or_unsupported_cold_url_is_refused_at_once(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ColdStorageError, match=r"cannot write the cold tier under .*a-file/cold"):
        cold_location(str(blocker / "cold"))
    with pytest.raises(ColdStorageError, match=r"ftp:// is not supported") as raised:
        cold_location("ftp://user:secret@127.0.0.1:1/cold")
    assert "secret" not in str(raised.value)
    assert cold_location(str(tmp_path / "new" / "cold")) == str((tmp_path / "new" / "cold").resolve())


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1/cold", "BLOCKER/cold", "nosuchscheme://x/y"])
def test_tempo_ingest_checks_the_cold_url_before_it_starts(tmp_path: Path, url: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    url = url.replace("BLOCKER", str(blocker))
    proc = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "ingest", str(tmp_path / "v.mp4"), "--stream",
                           "s", "--cold-after", "60", "--cold-url", url], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TEMPO_HOME": str(tmp_path / "home")}, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tempo: error: cannot ") and "the cold tier" in lines[0], lines
