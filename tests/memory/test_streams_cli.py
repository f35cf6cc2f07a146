"""`tempo streams` and `tempo memory` on a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

from tempo.tools.cli import main


def test_streams_json_lists_name_segments_time_and_bytes(
    store, records, redis_url, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("TEMPO_REDIS_URL", redis_url)
    store.create_stream("yard", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("yard", i) for i in range(6)])
    assert main(["streams", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    size = store.bytes_used("yard").total
    # A file source keeps no proxy clips (its segments are re-read): "proxy" is null.
    expected = {"name": "yard", "segments": 6, "start": 0.0, "end": 24.0, "bytes": size, "proxy": None,
                "gaps": [], "gap_seconds": 0.0, "family": "tempo"}
    assert out == {"streams": [expected]}


def test_streams_table_has_one_row_per_stream(store, records, redis_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TEMPO_REDIS_URL", redis_url)
    for name in ("a", "b"):
        store.create_stream(name, records.FILE_SOURCE, records.SETTINGS)
        store.put_segment(records.make_record(name, 0))
    assert main(["streams"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "SEGMENTS"]
    assert [line.split()[:4] for line in lines[1:]] == [["a", "1", "0:00", "0:04"], ["b", "1", "0:00", "0:04"]]


def test_unreachable_redis_is_one_line_and_non_zero(monkeypatch, capsys) -> None:
    monkeypatch.setenv("TEMPO_REDIS_URL", "redis://127.0.0.1:1")
    assert main(["streams"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tempo: error: cannot reach Redis") and err.count("\n") == 1


def test_memory_status_start_stop(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("TEMPO_REDIS_URL", raising=False)
    monkeypatch.setenv("TEMPO_HOME", str(tmp_path))
    assert main(["memory", "start", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True and status["url"] == f"unix://{tmp_path}/redis/redis.sock"
    assert main(["memory", "stop"]) == 0
    assert capsys.readouterr().out.strip() == "stopped"
    assert main(["memory", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] is False
