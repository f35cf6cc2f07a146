"""`tempo eval` never mixes or crashes: unaskable rows are reported and skipped, the model is identified
however it was named, a videoless --data is refused with a hint, a JSON summary lies beside the results,
and memory mode keeps its streams out of the user's memory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tempo.eval.datasets import load_benchmark
from tempo.eval.harness import EvalSettings, run_eval, score
from tempo.eval.identity import model_identity
from tempo.eval.summary import summary_path
from tempo.models.tiny import write_tiny_checkpoint
from tempo.tools.cli import main


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def messy_videomme(bench_dirs: dict[str, Path], tmp_path: Path) -> Path:
    """The Video-MME fixture plus rows that cannot be asked, each for one reason."""
    data = tmp_path / "videomme"
    shutil.copytree(bench_dirs["videomme"], data)
    rows = _rows(data / "videomme" / "test.jsonl")
    good = rows[0]
    bad = [
        {**good, "question_id": "opt-null", "options": None},
        {**good, "question_id": "ans-null", "answer": None},
        {**good, "question_id": "ans-E", "answer": "E"},
        {**good, "question_id": "dur-null", "duration": None},
        {**good, "question_id": "task-null", "task_type": None},
        {**good, "question_id": "q-null", "question": None},
        {**good, "question_id": "opts-str", "options": "A. One."},
        {**good, "question_id": None},
        {**rows[1]},  # the second question again: a repeated id
    ]
    (data / "videomme" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [good, rows[1], *bad]))
    return data


def test_unaskable_rows_are_reported_with_id_and_reason_and_skipped(messy_videomme: Path) -> None:
    loaded = load_benchmark("videomme", messy_videomme)
    assert [i.id for i in loaded.items] == ["000-1", "001-1"]
    reasons = {row.id: row.reason for row in loaded.skipped}
    assert reasons == {
        "opt-null": "options is null",
        "ans-null": "answer is null",
        "ans-E": "answer 'E' is not one of the option letters A, B, C, D",
        "dur-null": "duration is null",
        "task-null": "task_type is null",
        "q-null": "question is null",
        "opts-str": "options is not a list of option texts",
        "test.jsonl#10": "question_id is null",
        "001-1": "its id repeats an earlier question's",
    }
    assert all(i.categories["duration"] != ["None"] for i in loaded.items)


def test_a_run_over_unaskable_rows_counts_them_and_never_crashes(
    messy_videomme: Path, tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    rc = main(["eval", "videomme", "--data", str(messy_videomme), "--model", str(tiny_dir), "--budget", "64",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0 and "Traceback" not in captured.err
    assert [r["id"] for r in _rows(out)] == ["000-1", "001-1"]
    assert "annotation row(s) could not be asked and were skipped (opt-null: options is null;" in captured.out
    summary = json.loads(summary_path(out).read_text())
    assert summary["counts"]["questions"] == 2 and summary["counts"]["skipped"] == len(summary["skipped"]) == 9
    assert {"id": "ans-null", "reason": "answer is null"} in summary["skipped"]


def test_every_row_unaskable_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mlvu"
    data.mkdir()
    (data / "mlvu_dev.json").write_text(json.dumps([{"video_name": "a.mp4", "question": "q", "answer": None,
                                                     "task_type": "count"}]))
    assert main(["eval", "mlvu", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tempo: error: a mlvu annotation row in ") and "answer is null" in err
    assert err.count("\n") == 1


def test_the_model_is_identified_however_given_and_another_one_is_refused(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "r.jsonl"
    args = ["eval", "mlvu", "--data", str(bench_dirs["mlvu"]), "--budget", "64", "--limit", "1", "--out", str(out)]
    monkeypatch.setenv("TEMPO_MODEL", str(tiny_dir))
    assert main(args) == 0
    recorded = _rows(out)[0]["run"]["model"]
    assert recorded == model_identity(None) == model_identity(str(tiny_dir))
    assert recorded["path"] == str(tiny_dir.resolve()) and len(recorded["sha256"]) == 64
    monkeypatch.delenv("TEMPO_MODEL")
    capsys.readouterr()
    assert main([*args, "--model", str(tiny_dir)]) == 0  # the same model by flag: resumed, nothing asked
    assert "(0 answered now, 1 from earlier runs)" in capsys.readouterr().out
    other = write_tiny_checkpoint(tmp_path / "other", seed=1)
    capsys.readouterr()
    before = out.read_text()
    monkeypatch.setenv("TEMPO_MODEL", str(other))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tempo: error: ") and f"model {tiny_dir.resolve()}" in err and err.count("\n") == 1
    assert out.read_text() == before


def test_data_one_level_too_deep_is_refused_with_a_hint(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = bench_dirs["videomme"] / "videomme"  # the annotations' folder: no data/ below it
    out = tmp_path / "r.jsonl"
    assert main(["eval", "videomme", "--data", str(deep), "--model", str(tiny_dir), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "none of the videos the Video-MME annotations in" in captured.err
    assert f"did you mean --data {bench_dirs['videomme'].resolve()}?" in captured.err
    assert not out.exists() or out.read_text() == ""
    # Said before a missing model would be: the data is the user's first mistake here.
    assert main(["eval", "videomme", "--data", str(deep), "--model", str(tmp_path / "nowhere")]) == 2
    assert "none of the videos" in capsys.readouterr().err


def test_no_nan_cell_when_a_kind_of_question_is_absent(tmp_path: Path) -> None:
    records = [{"correct": True, "categories": {"duration": ["short"]}, "tokens_per_frame": None, "error": None,
                "guessed": False}]
    table = score(records, EvalSettings("videomme", tmp_path, budget=4096)).markdown()
    assert "nan" not in table
    assert "| this run | 4096 | reference | 1 | 100.0 | – | 0.00 |" in table


def test_the_summary_is_machine_readable_beside_the_results(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mme.jsonl"
    settings = EvalSettings("videomme", bench_dirs["videomme"], model=str(tiny_dir), budget=64, out=out)
    report = run_eval(settings, progress=False)
    path = summary_path(out)
    assert path == tmp_path / "mme.summary.json"
    summary = json.loads(path.read_text())
    assert summary["benchmark"] == "videomme" and summary["mode"] == "reference" and summary["budget"] == 64
    assert summary["model"] == model_identity(str(tiny_dir))
    assert summary["accuracy"] == pytest.approx(report.accuracy, abs=1e-4)
    assert summary["counts"] == {"questions": 3, "correct": sum(r["correct"] for r in report.records),
                                 "answered_now": 3, "failed": 0, "guessed": 0, "skipped": 0}
    assert summary["by_category"]["duration"]["long"]["questions"] == 2
    assert set(summary["by_category"]) == {"duration", "domain", "task type"}
    assert summary["results"]["videomme"]["accuracy,none"] == summary["accuracy"]
    assert "videomme long,none" in summary["results"]["videomme"]
