"""Read each benchmark's public annotation files from a local directory into uniform items.

Each item keeps the annotation row as lmms-eval sees it (`doc`: the field names of the Hugging Face
dataset the release's lmms-eval task loads), so `tempo.eval.prompts` builds the release's text from
it. Expected layouts (README "Evaluate" says where to download each):

    lvbench/         lmms-lab/LVBench:  data/train-*.parquet (rows: uid, question, answer,
                     question_type, video_path, …) and the videos at video_path under the directory;
                     or THUDM/LVBench's video_info.meta.jsonl with videos/<key>.mp4
    videomme/        lmms-lab/Video-MME: videomme/test-*.parquet and data/<videoID>.mp4 (or .MP4, .mkv)
    mlvu/            sy1998/MLVU_dev: its annotation rows (video_name, question with the options,
                     answer letter, task_type) and the videos, found by file name anywhere below
    longvideobench/  longvideobench/LongVideoBench: lvb_val.json and videos/<video_path>

Rows may also come as .json (a list) or .jsonl files with the same fields; parquet needs pyarrow
(`pip install 'tempo-video[eval]'`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tempo.eval.errors import AnnotationError
from tempo.eval.prompts import LETTERS, benchmark, longvideobench_options

VIDEO_SUFFIXES = (".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")


@dataclass(frozen=True)
class BenchmarkItem:
    """One question: its id, video file, the annotation row (`doc`), the correct letter, and the
    benchmark's own categories it counts in (e.g. {"duration": "long", "task": "OCR Problems"})."""

    benchmark: str
    id: str
    video: Path
    doc: Mapping[str, Any]
    answer: str
    choices: tuple[str, ...]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return benchmark(self.benchmark).question(self.doc)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .json (list, or {"data": [...]}) / .jsonl / .parquet annotation file."""
    try:
        if path.suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise AnnotationError(
                    f"{path} is parquet, which needs pyarrow: pip install 'tempo-video[eval]'"
                ) from None
            return [dict(row) for row in pq.read_table(path).to_pylist()]
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"cannot read annotation file {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise AnnotationError(f"annotation file {path} is not a list of rows")
    return data


def _annotation_files(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    for pattern in patterns:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def _find_video(root: Path, candidates: list[Path]) -> Path:
    for path in candidates:
        if path.is_file():
            return path
        for suffix in VIDEO_SUFFIXES:
            alt = path.with_suffix(suffix)
            if alt.is_file():
                return alt
    return candidates[0]  # reported as missing when the item is run, so other items still run


def _need(row: Mapping[str, Any], keys: tuple[str, ...], where: Path) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise AnnotationError(f"a row of {where} lacks {', '.join(missing)} (is this the right benchmark?)")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        # THUDM/LVBench and some exports store question_type as a list; others as a JSON string.
        if value.startswith("["):
            try:
                return [str(v) for v in json.loads(value)]
            except ValueError:
                pass
        return [value]
    return [str(v) for v in value]


def _lvbench(root: Path) -> Iterator[BenchmarkItem]:
    official = _annotation_files(root, ("video_info.meta.jsonl", "*/video_info.meta.jsonl"))
    if official:
        for video_row in _read_rows(official[0]):
            _need(video_row, ("key", "qa"), official[0])
            video = _find_video(root, [root / "videos" / f"{video_row['key']}.mp4", root / f"{video_row['key']}.mp4"])
            for qa in video_row["qa"]:
                _need(qa, ("uid", "question", "answer"), official[0])
                yield BenchmarkItem("lvbench", str(qa["uid"]), video, qa, str(qa["answer"]).strip(), tuple("ABCD"),
                                    {"task type": _as_list(qa.get("question_type"))})
        return
    files = _annotation_files(root, ("data/*.parquet", "*.parquet", "*.jsonl", "*.json"))
    for path in files:
        for n, row in enumerate(_read_rows(path)):
            _need(row, ("question", "answer", "video_path"), path)
            yield BenchmarkItem("lvbench", str(row.get("uid", f"{path.stem}-{n}")), root / str(row["video_path"]),
                                row, str(row["answer"]).strip(), tuple("ABCD"),
                                {"task type": _as_list(row.get("question_type"))})
    if not files:
        raise AnnotationError(f"no LVBench annotations in {root} (expected data/*.parquet or video_info.meta.jsonl)")


def _videomme(root: Path) -> Iterator[BenchmarkItem]:
    files = _annotation_files(root, ("videomme/*.parquet", "*.parquet", "videomme/*.json*", "*.jsonl", "*.json"))
    if not files:
        raise AnnotationError(f"no Video-MME annotations in {root} (expected videomme/test-*.parquet)")
    for path in files:
        for row in _read_rows(path):
            _need(row, ("question_id", "videoID", "question", "options", "answer", "duration"), path)
            video = _find_video(root, [root / "data" / f"{row['videoID']}.mp4", root / f"{row['videoID']}.mp4"])
            categories = {"duration": [str(row["duration"])]}
            if row.get("domain"):
                categories["domain"] = [str(row["domain"])]
            if row.get("task_type"):
                categories["task type"] = [str(row["task_type"])]
            yield BenchmarkItem("videomme", str(row["question_id"]), video, row, str(row["answer"]).strip(),
                                tuple("ABCD"), categories)


def _mlvu(root: Path) -> Iterator[BenchmarkItem]:
    files = _annotation_files(root, ("*.parquet", "*/*.parquet", "*.jsonl", "*.json", "*/*.json"))
    if not files:
        raise AnnotationError(f"no MLVU annotations in {root} (expected sy1998/MLVU_dev's rows)")
    videos = {p.name: p for p in root.rglob("*") if p.suffix in VIDEO_SUFFIXES}
    for path in files:
        for n, row in enumerate(_read_rows(path)):
            _need(row, ("video_name", "question", "answer", "task_type"), path)
            name = Path(str(row["video_name"])).name
            video = videos.get(name, root / str(row["video_name"]))
            yield BenchmarkItem("mlvu", str(row.get("question_id", f"{path.stem}-{n}")), video, row,
                                str(row["answer"]).strip(), tuple("ABCD"), {"task type": [str(row["task_type"])]})


def _longvideobench(root: Path) -> Iterator[BenchmarkItem]:
    files = _annotation_files(root, ("lvb_val.json", "*/lvb_val.json", "validation-*.parquet", "*.jsonl"))
    if not files:
        raise AnnotationError(f"no LongVideoBench annotations in {root} (expected lvb_val.json)")
    for path in files:
        for row in _read_rows(path):
            _need(row, ("id", "question", "option0", "correct_choice", "video_path"), path)
            choices = tuple(LETTERS[: len(longvideobench_options(row))])
            categories = {k: [str(row[key])] for k, key in (("duration", "duration_group"),
                                                             ("category", "question_category")) if key in row}
            video = _find_video(root, [root / "videos" / str(row["video_path"]), root / str(row["video_path"])])
            answer = LETTERS[int(row["correct_choice"])]
            yield BenchmarkItem("longvideobench", str(row["id"]), video, row, answer, choices, categories)


_READERS = {"lvbench": _lvbench, "videomme": _videomme, "mlvu": _mlvu, "longvideobench": _longvideobench}


def load_items(name: str, root: str | Path, *, limit: int | None = None) -> list[BenchmarkItem]:
    """The benchmark's items under `root`, in file order; the first `limit` if given."""
    benchmark(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise AnnotationError(f"benchmark directory {root} does not exist")
    items: list[BenchmarkItem] = []
    try:
        for item in _READERS[name](root):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # a field of the wrong kind
        raise AnnotationError(f"a {name} annotation row in {root} is malformed ({exc!s})") from None
    if not items:
        raise AnnotationError(f"the {name} annotations in {root} hold no questions")
    return items
