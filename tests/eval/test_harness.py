"""`tempo eval` end to end on the tiny checkpoint: each benchmark's public layout, real decoding of
generated videos, the reference pipeline and memory, resumable results, scores as lmms-eval computes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tempo.eval.datasets import load_items
from tempo.eval.harness import EvalSettings, read_results, run_eval, score
from tempo.eval.identity import model_identity
from tempo.eval.prompts import benchmark
from tempo.tools.cli import main

from .conftest import WRITERS


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_layout_reads_into_items_with_answers_categories_and_videos(bench_dirs: dict[str, Path]) -> None:
    lv = load_items("lvbench", bench_dirs["lvbench"])
    assert [i.id for i in lv] == ["vidA-q0", "vidA-q1", "vidB-q0", "vidB-q1"]
    assert [i.answer for i in lv] == ["A", "B", "B", "C"]
    assert lv[1].categories == {"task type": ["reasoning", "key information retrieval"]}
    assert lv[2].video == bench_dirs["lvbench"] / "videos" / "vidB.mp4" and lv[2].video.is_file()

    mme = load_items("videomme", bench_dirs["videomme"])
    assert [i.categories["duration"] for i in mme] == [["short"], ["long"], ["long"]]
    assert all(i.video.is_file() and i.video.parent.name == "data" for i in mme)

    mlvu = load_items("mlvu", bench_dirs["mlvu"])
    assert [i.categories["task type"][0] for i in mlvu] == ["plotQA", "needle", "needle", "count"]
    assert all(i.video.is_file() for i in mlvu)  # found by name under video/<task>/

    lvb = load_items("longvideobench", bench_dirs["longvideobench"])
    assert [i.choices for i in lvb] == [tuple("ABCDE"), tuple("ABCD"), tuple("ABCD")]
    assert [i.answer for i in lvb] == ["A", "B", "C"]
    assert lvb[0].categories == {"duration": ["15"], "category": ["S2E"]}
    assert load_items("longvideobench", bench_dirs["longvideobench"], limit=2)[-1].id == "clip1_0"


@pytest.mark.parametrize("name", list(WRITERS))
def test_reference_mode_answers_every_question_with_the_release_prompt(
    name: str, bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    rc = main(["eval", name, "--data", str(bench_dirs[name]), "--model", str(tiny_dir), "--budget", "4096",
               "--out", str(out)])
    assert rc == 0
    records = _records(out)
    items = load_items(name, bench_dirs[name])
    assert [r["id"] for r in records] == [i.id for i in items]
    spec = benchmark(name)
    for record, item in zip(records, items, strict=True):
        assert record["question"] == spec.question(item.doc)  # what the model was asked
        assert record["error"] is None and record["answer"] == item.answer
        assert record["correct"] == (record["letter"] == item.answer)
        assert 0.5 <= record["tokens_per_frame"] <= 32  # ATA: between the floor and M per frame
        assert record["run"] == {"benchmark": name, "mode": "reference", "budget": 4096,
                                 "model": model_identity(str(tiny_dir))}
        assert record["run"]["model"]["path"] == str(tiny_dir.resolve())
    table = capsys.readouterr().out
    assert "| Tempo-6B (paper) | 4096 | reference | all |" in table
    assert f"| this run | 4096 | reference | {len(items)} |" in table
    assert f"| {spec.title} by " in table  # the benchmark's own categories


def test_rerun_skips_finished_questions_and_drops_a_line_cut_short(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    settings = EvalSettings("mlvu", bench_dirs["mlvu"], model=str(tiny_dir), budget=64, limit=2, out=out)
    first = run_eval(settings, progress=False)
    assert first.ran == 2 and len(_records(out)) == 2
    with out.open("a") as fh:  # a crash in the middle of writing the third record
        fh.write('{"run": {"benchmark": "mlvu", "mo')
    full = EvalSettings("mlvu", bench_dirs["mlvu"], model=str(tiny_dir), budget=64, out=out)
    second = run_eval(full, progress=False)
    assert second.ran == 2 and len(second.records) == 4
    assert [r["id"] for r in _records(out)] == [i.id for i in load_items("mlvu", bench_dirs["mlvu"])]
    assert run_eval(full, progress=False).ran == 0  # everything finished: nothing is answered again


def test_results_of_another_run_are_refused_in_one_sentence(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    args = ["eval", "videomme", "--data", str(bench_dirs["videomme"]), "--model", str(tiny_dir), "--limit", "1"]
    assert main([*args, "--budget", "4096", "--out", str(out)]) == 0
    capsys.readouterr()
    before = out.read_text()
    assert main([*args, "--budget", "8192", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tempo: error: ") and "budget 4096" in err and "choose another --out" in err
    assert "\n" not in err and out.read_text() == before


def test_a_missing_video_counts_wrong_and_is_retried_next_run(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "lvb"
    shutil.copytree(bench_dirs["longvideobench"], data)
    moved = tmp_path / "clip1.mp4"
    (data / "videos" / "clip1.mp4").rename(moved)
    settings = EvalSettings("longvideobench", data, model=str(tiny_dir), budget=64, out=tmp_path / "r.jsonl")
    report = run_eval(settings, progress=False)
    failed = [r for r in report.records if r["error"]]
    assert [r["id"] for r in failed] == ["clip1_0"] and not failed[0]["correct"] and report.failed == 1
    assert "count as wrong" in report.markdown()
    moved.rename(data / "videos" / "clip1.mp4")
    again = run_eval(settings, progress=False)
    assert again.ran == 1 and again.failed == 0


def test_memory_mode_ingests_each_video_once_and_answers_from_memory(
    bench_dirs: dict[str, Path], tiny_dir: Path, tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis

    settings = EvalSettings("lvbench", bench_dirs["lvbench"], model=str(tiny_dir), budget=256, mode="memory",
                            out=tmp_path / "m.jsonl", redis_url=redis_url, home=tmp_path / "home", top_k=1)
    report = run_eval(settings, progress=False)
    assert len(report.records) == 4 and report.failed == 0
    assert all(0.5 <= r["tokens_per_frame"] <= 32 for r in report.records)
    client = redis.Redis.from_url(redis_url)
    streams = {k.decode() for k in client.keys("*") if b"eval-lvbench-vid" in k}
    assert any("eval-lvbench-vidA-" in k for k in streams) and any("eval-lvbench-vidB-" in k for k in streams)
    assert "Memory mode samples a fixed 2 fps grid" in report.markdown()
    # Its streams live in the evaluation's own namespace: `tempo streams` and the console never list them.
    from tempo.eval.harness import EVAL_PREFIX
    from tempo.memory.store import RedisMemoryStore

    assert not [s.name for s in RedisMemoryStore(client).list_streams() if s.name.startswith("eval-")]
    assert len([s for s in RedisMemoryStore(client, prefix=EVAL_PREFIX).list_streams()
                if s.name.startswith("eval-lvbench-")]) == 2
    capsys.readouterr()
    assert main(["streams", "--json", "--redis-url", redis_url]) == 0
    assert "eval-lvbench" not in capsys.readouterr().out


def _rec(correct: bool, **categories: list[str]) -> dict:
    return {"correct": correct, "categories": categories, "tokens_per_frame": 2.0, "error": None, "guessed": False}


def test_mlvu_scores_the_mean_over_task_types_and_videomme_reports_long(tmp_path: Path) -> None:
    mlvu = EvalSettings("mlvu", tmp_path)
    records = [_rec(True, **{"task type": ["needle"]}), _rec(True, **{"task type": ["needle"]}),
               _rec(False, **{"task type": ["needle"]}), _rec(True, **{"task type": ["count"]})]
    report = score(records, mlvu)
    assert report.accuracy == pytest.approx((200 / 3 + 100) / 2)  # not 3/4 = 75
    assert report.by_category["task type"]["needle"] == (3, pytest.approx(200 / 3))
    mme = score([_rec(True, duration=["long"]), _rec(False, duration=["long"]), _rec(True, duration=["short"])],
                EvalSettings("videomme", tmp_path, budget=8192))
    assert mme.accuracy == pytest.approx(200 / 3) and mme.extra["videomme long"] == 50.0
    table = mme.markdown()
    assert "| Tempo-6B (paper) | 8192 | reference | all | 67.7 | 57.0 | 3.1–4.3 |" in table
    assert "| this run | 8192 | reference | 3 | 66.7 | 50.0 | 2.00 |" in table


def test_parquet_annotations_read_like_the_json_rows(bench_dirs: dict[str, Path], tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "videomme"
    shutil.copytree(bench_dirs["videomme"], data)
    rows = _records(data / "videomme" / "test.jsonl")
    (data / "videomme" / "test.jsonl").unlink()
    pq.write_table(pa.Table.from_pylist(rows), data / "videomme" / "test-00000-of-00001.parquet")
    items = load_items("videomme", data)
    assert [dict(i.doc) for i in items] == rows
    assert items[0].question == benchmark("videomme").question(rows[0])


def test_a_malformed_row_or_an_unwritable_out_is_one_sentence(
    bench_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "lvb"
    data.mkdir()
    (data / "lvb_val.json").write_text(json.dumps([{"id": "x", "question": "q", "option0": "a",
                                                    "correct_choice": "first", "video_path": "x.mp4"}]))
    assert main(["eval", "longvideobench", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tempo: error: a longvideobench annotation row in ") and err.count("\n") == 1
    assert "x: correct_choice 'first' is not an option number" in err
    assert main(["eval", "mlvu", "--data", str(bench_dirs["mlvu"]), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tempo: error: cannot use {tmp_path} as the results file") and err.count("\n") == 1


def test_a_directory_without_annotations_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "videomme", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"tempo: error: no Video-MME annotations in {tmp_path} (expected videomme/test-*.parquet)\n"


def test_memory_mode_takes_the_answer_paths_top_k_by_default(tmp_path: Path) -> None:
    # `--mode memory` measures what `tempo ask --stream` answers, so it must retrieve as many candidates.
    from tempo.settings import AskSettings
    from tempo.tools.cli import build_parser

    args = build_parser().parse_args(["eval", "videomme", "--data", str(tmp_path), "--mode", "memory"])
    assert args.top_k == AskSettings().top_k
    assert EvalSettings(benchmark="videomme", data=tmp_path, mode="memory").top_k == AskSettings().top_k
    ask = build_parser().parse_args(["ask", "--stream", "s", "q"])
    assert ask.top_k in (None, AskSettings().top_k)  # None: AskSettings' own


def test_memory_mode_results_of_another_top_k_are_refused(tmp_path: Path) -> None:
    # Which segments are recompressed depends on the top-K: records of two top-Ks must not mix.
    from tempo.eval.errors import ResultsFileError

    out = tmp_path / "r.jsonl"
    ran = EvalSettings("videomme", tmp_path, mode="memory", top_k=8, out=out)
    out.write_text(json.dumps({"run": ran.run_key(), "id": "q1"}) + "\n")
    assert set(read_results(out, ran.run_key())) == {"q1"}
    with pytest.raises(ResultsFileError, match=r"memory mode, .*top-K 8\); choose another --out"):
        read_results(out, EvalSettings("videomme", tmp_path, mode="memory", top_k=16, out=out).run_key())
    # The reference mode has no top-K: its files resume whatever the flag says.
    reference = EvalSettings("videomme", tmp_path, top_k=8, out=tmp_path / "ref.jsonl")
    assert "top_k" not in reference.run_key()
