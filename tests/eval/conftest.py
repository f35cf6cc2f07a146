"""Fixtures for the evaluation tests: a tiny checkpoint, and tiny benchmark directories in each
benchmark's public layout (the files and field names of the public downloads; see tempo.eval.datasets)
with short PyAV-encoded videos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tempo.models.tiny import write_tiny_checkpoint
from tempo.streaming.synthetic import write_test_video

VIDEO_SECONDS = 6.0


def _video(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_test_video(path, duration=VIDEO_SECONDS, fps=10.0, size=(96, 64), seed=seed)


def write_lvbench(root: Path) -> Path:
    """THUDM/LVBench's video_info.meta.jsonl (one line per video, its questions under "qa")."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for v, key in enumerate(("vidA", "vidB")):
        _video(root / "videos" / f"{key}.mp4", seed=v)
        rows.append({"key": key, "type": "cartoon", "video_info": {"duration_minutes": 0.1}, "qa": [
            {"uid": f"{key}-q{q}", "question": f"What happens at step {q}?\n(A) a\n(B) b\n(C) c\n(D) d",
             "answer": "ABCD"[(v + q) % 4],
             "question_type": [["entity recognition"], ["reasoning", "key information retrieval"]][q],
             "time_reference": "00:01-00:02"}
            for q in range(2)
        ]})
    (root / "video_info.meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_videomme(root: Path) -> Path:
    """lmms-lab/Video-MME's rows (JSON lines here; the download is videomme/test-*.parquet), data/<id>.mp4."""
    (root / "videomme").mkdir(parents=True, exist_ok=True)
    rows = []
    videos = (("fFjv93ACGo8", "short"), ("FjS2LzrHEO8", "long"), ("FsLaTZmP6Uw", "long"))
    for n, (vid, duration) in enumerate(videos):
        _video(root / "data" / f"{vid}.mp4", seed=10 + n)
        rows.append({"video_id": f"{n:03d}", "duration": duration, "domain": "Knowledge", "sub_category": "Astronomy",
                     "url": f"https://www.youtube.com/watch?v={vid}", "videoID": vid, "question_id": f"{n:03d}-1",
                     "task_type": ["Counting Problem", "OCR Problems", "Counting Problem"][n],
                     "question": "How many stars are shown?",
                     "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."],
                     "answer": "ABCD"[n]})
    (root / "videomme" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_mlvu(root: Path) -> Path:
    """sy1998/MLVU_dev's rows (question with its options, answer letter, task_type) and the videos."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, task in enumerate(("plotQA", "needle", "needle", "count")):
        name = f"{task}_{n}.mp4"
        _video(root / "video" / task / name, seed=20 + n)
        rows.append({"video_name": name, "duration": VIDEO_SECONDS, "task_type": task, "answer": "ABCD"[n % 4],
                     "question": "What is the main background of the video?\n(A) a forest\n(B) a city\n"
                                 "(C) a desert\n(D) the sea"})
    (root / "mlvu_dev.json").write_text(json.dumps(rows))
    return root


def write_longvideobench(root: Path) -> Path:
    """longvideobench/LongVideoBench's lvb_val.json and videos/<video_path>."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(3):
        _video(root / "videos" / f"clip{n}.mp4", seed=30 + n)
        rows.append({"video_id": f"clip{n}", "id": f"clip{n}_0", "video_path": f"clip{n}.mp4",
                     "duration": VIDEO_SECONDS, "duration_group": [15, 60, 600][n],
                     "question_category": ["S2E", "T3O", "S2E"][n], "question": "What colour is the car?",
                     "option0": "red", "option1": "blue", "option2": "green", "option3": "white",
                     "option4": "N/A" if n else "black", "correct_choice": n})
    (root / "lvb_val.json").write_text(json.dumps(rows))
    return root


WRITERS = {"lvbench": write_lvbench, "videomme": write_videomme, "mlvu": write_mlvu,
           "longvideobench": write_longvideobench}


def write_benchmark(name: str, root: Path) -> Path:
    return WRITERS[name](root)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tempo-tiny", seed=0)


@pytest.fixture(scope="session")
def bench_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("benchmarks")
    return {name: write_benchmark(name, root / name) for name in WRITERS}
