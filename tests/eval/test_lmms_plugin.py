"""lmms-eval discovers the installed `tempo` model through its entry-point plugin mechanism and runs
it on a tiny generated task: real lmms-eval (installed by `make venv`), real decoding, the tiny checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lmms_eval.models import get_model, list_available_models
from tempo.eval.harness import ReferencePipeline
from tempo.eval.lmms_plugin import Tempo
from tempo.eval.prompts import lvbench_prompt
from tempo.models import TempoInferenceConfig
from tempo.streaming.synthetic import write_test_video

TASK_YAML = """\
task: tempo_tiny_mcq
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 8
  until: ["\\n\\n"]
process_results: !function utils.process_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
TASK_UTILS = """\
from tempo.eval.answers import extract_choice
from tempo.eval.prompts import lvbench_prompt


def doc_to_visual(doc):
    return [doc["video"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return "<image>" + lvbench_prompt(doc)


def process_results(doc, results):
    return {"acc": float(extract_choice(results[0]) == doc["answer"])}
"""


def test_lmms_eval_lists_tempo_from_the_entry_point() -> None:
    assert "tempo" in list_available_models()
    assert get_model("tempo") is Tempo


def test_lmms_eval_runs_the_tempo_model_on_a_generated_task(tiny_dir: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    video = write_test_video(task / "clip.mp4", duration=6.0, fps=10.0, size=(96, 64))
    docs = [
        {"video": str(video), "question": "What moves?", "options": ["a", "b", "c", "d"], "answer": "B"},
        {"video": str(task / "missing.mp4"), "question": "Why?", "options": ["a", "b", "c", "d"], "answer": "C"},
    ]
    (task / "docs.json").write_text(json.dumps(docs))
    (task / "tempo_tiny.yaml").write_text(TASK_YAML.format(docs=task / "docs.json"))
    (task / "utils.py").write_text(TASK_UTILS)
    out = tmp_path / "out"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(task)}
    argv = [str(Path(sys.executable).parent / "lmms-eval"), "eval", "--model", "tempo",
            "--model_args", f"pretrained={tiny_dir},visual_token_budget=64", "--tasks", "tempo_tiny_mcq",
            "--include_path", str(task), "--batch_size", "1", "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tempo_tiny_mcq" in proc.stdout and "acc" in proc.stdout
    samples_file = next(out.rglob("*samples_tempo_tiny_mcq.jsonl"))
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert [s["doc_id"] for s in samples] == [0, 1]
    # The answer lmms-eval recorded is what the project's reference pipeline answers for the same video
    # and question (the release's wrapper drops "<image>"), at the task's answer length.
    pipeline = ReferencePipeline(str(tiny_dir), TempoInferenceConfig(budget=64, context_limit=32768))
    expected = pipeline.ask(str(video), lvbench_prompt(docs[0]), max_new_tokens=8).answer.strip()
    assert samples[0]["filtered_resps"] == expected
    assert samples[1]["filtered_resps"] == ""  # a missing video: an empty answer, as the release gives
    results = json.loads(next(out.rglob("*_results.json")).read_text())
    assert results["results"]["tempo_tiny_mcq"]["acc,none"] in (0.0, 0.5)


def test_unsupported_request_kinds_and_batches_say_so(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match="--batch_size 1"):
        Tempo(pretrained=str(tiny_dir), batch_size=4)
    model = Tempo(pretrained=str(tiny_dir), visual_token_budget="64")
    with pytest.raises(NotImplementedError, match="log-likelihood"):
        model.loglikelihood([])
