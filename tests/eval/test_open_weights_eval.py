"""`tempo eval` with a Qwen3-VL checkpoint (issue 23): the family comes from the checkpoint, the
reference pipeline runs over renditions, every question is answered and scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tempo.eval.datasets import load_items
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.tools.cli import main


def test_reference_eval_runs_in_the_open_weights_family(
    bench_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qwen = write_tiny_qwen3vl(tmp_path / "qwen", seed=0, embedder=False)
    out = tmp_path / "results.jsonl"
    assert (
        main(
            [
                "eval",
                "lvbench",
                "--data",
                str(bench_dirs["lvbench"]),
                "--model",
                str(qwen),
                "--budget",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == [i.id for i in load_items("lvbench", bench_dirs["lvbench"])]
    assert all(r["error"] is None and r["run"]["model"]["path"] == str(qwen.resolve()) for r in records)
    assert "| this run | 64 | reference |" in capsys.readouterr().out
