"""lmms-eval discovers the installed `tempo` model through its entry-point plugin mechanism and runs
it on a tiny generated task: real lmms-eval (installed by `make venv`), real decoding, the tiny checkpoint.

lmms-eval lives in its own venv beside the project's (`make venv` builds `.venv-lmms`, which sees the
project's venv through a .pth file): it brings Pillow, filelock<4 and more, which the project's own
paths must not depend on. So lmms-eval only ever runs in subprocesses of that venv here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tempo.eval.harness import ReferencePipeline
from tempo.eval.prompts import lvbench_prompt
from tempo.models import TempoInferenceConfig
from tempo.settings import AskSettings
from tempo.streaming.synthetic import write_test_video

# `make venv` (or `make lmms`) puts it at $(VENV)-lmms, or at $LMMS_VENV as the Makefile's variable says.
LMMS_VENV = Path(os.environ.get("LMMS_VENV") or sys.prefix + "-lmms")
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


def _lmms_bin(name: str) -> str:
    path = LMMS_VENV / "bin" / name
    assert path.exists(), f"{path} is missing: `make venv` builds the lmms-eval venv"
    return str(path)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_lmms_bin("python"), "-c", code], capture_output=True, text=True, timeout=300)


def test_lmms_eval_lists_tempo_from_the_entry_point() -> None:
    proc = _python(
        "from lmms_eval.models import get_model, list_available_models\n"
        "from tempo.eval.lmms_plugin import Tempo\n"
        "assert 'tempo' in list_available_models()\n"
        "assert get_model('tempo') is Tempo\n"
        "print('ok')"
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_lmms_eval_models_lists_tempo() -> None:
    proc = subprocess.run([_lmms_bin("lmms-eval"), "models"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(line.split()[:2] == ["tempo", "simple"] for line in proc.stdout.splitlines()), proc.stdout[-2000:]


def test_the_lmms_venv_keeps_the_projects_torch_and_pyav_and_imports_the_video_tasks() -> None:
    # lmms-eval's own dependency list would bring a CUDA torch and av<16; its venv must use the project's.
    import av
    import torch

    proc = _python(
        "import av, torch\n"
        "print(torch.__version__, av.__version__)\n"
        "import lmms_eval.tasks.videomme.utils, lmms_eval.tasks.longvideobench.utils\n"  # cv2, decord
        "import lmms_eval.tasks.lvbench.utils, lmms_eval.tasks.mlvu.utils\n"
        "print('ok')"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.split("\n")
    assert lines[0] == f"{torch.__version__} {av.__version__}" and "ok" in lines


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
    argv = [_lmms_bin("lmms-eval"), "eval", "--model", "tempo",
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
    pipeline = ReferencePipeline(str(tiny_dir), TempoInferenceConfig(context_limit=32768), AskSettings(budget=64))
    expected = pipeline.ask(str(video), lvbench_prompt(docs[0]), max_new_tokens=8)["answer"].strip()
    assert samples[0]["filtered_resps"] == expected
    assert samples[1]["filtered_resps"] == ""  # a missing video: an empty answer, as the release gives
    results = json.loads(next(out.rglob("*_results.json")).read_text())
    assert results["results"]["tempo_tiny_mcq"]["acc,none"] in (0.0, 0.5)


def test_unsupported_request_kinds_and_batches_say_so(tiny_dir: Path) -> None:
    proc = _python(
        "from tempo.eval.lmms_plugin import Tempo\n"
        "try:\n"
        f"    Tempo(pretrained={str(tiny_dir)!r}, batch_size=4)\n"
        "except ValueError as exc:\n"
        "    print('batch:', exc)\n"
        f"model = Tempo(pretrained={str(tiny_dir)!r}, visual_token_budget='64')\n"
        "print('budget:', model.pipeline.settings.budget)\n"
        "try:\n"
        "    model.loglikelihood([])\n"
        "except NotImplementedError as exc:\n"
        "    print('loglikelihood:', exc)\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "batch: the tempo model answers one request at a time: use --batch_size 1" in lines
    assert "budget: 64" in lines
    assert any(line.startswith("loglikelihood: ") and "log-likelihood" in line for line in lines)
