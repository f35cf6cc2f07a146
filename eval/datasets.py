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


class Unaskable(Exception):
    """A row that cannot be asked or scored: reported with its id and this reason, then skipped."""


@dataclass(frozen=True)
class SkippedRow:
    """An annotation row that was not asked: its id (or file and row number) and why."""

    id: str
    reason: str


@dataclass
class LoadedBenchmark:
    """The askable questions of a benchmark directory, and the rows skipped as unaskable."""

    items: list[BenchmarkItem]
    skipped: list[SkippedRow]


def _need(row: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Each of `keys` present, not null and not blank."""
    for key in keys:
        if key not in row:
            raise Unaskable(f"it lacks the field {key!r}")
        value = row[key]
        if value is None:
            raise Unaskable(f"{key} is null")
        if isinstance(value, str) and not value.strip():
            raise Unaskable(f"{key} is empty")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise Unaskable(f"{key} is a {type(value).__name__}, not text")


def _answer(value: Any, choices: tuple[str, ...]) -> str:
    letter = str(value).strip().upper()
    if letter not in choices:
        raise Unaskable(f"answer {value!r} is not one of the option letters {', '.join(choices)}")
    return letter


def _categories(row: Mapping[str, Any], fields: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Category kind → values from the row's `fields` (kind → field). A required field must be there; an
    optional one may be absent from the file, but a row that has it null would vanish from (or invent)
    a category, so it is unaskable too."""
    categories: dict[str, list[str]] = {}
    for kind, key in fields.items():
        if key not in row and key not in required:
            continue
        if row.get(key) is None:
            raise Unaskable(f"{key} is null" if key in row else f"it lacks the field {key!r}")
        values = _as_list(row[key])
        if not values or any(not v.strip() for v in values):
            raise Unaskable(f"{key} is empty")
        categories[kind] = values
    return categories


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        # THUDM/LVBench and some exports store question_type as a list; others as a JSON string.
        if value.startswith("["):
            try:
                return [str(v) for v in json.loads(value)]
            except ValueError:
                pass
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


Row = BenchmarkItem | SkippedRow


def _row(build: Any, row: Any, where: str, id_key: str | None) -> Row:
    """`build(row)`, or a SkippedRow naming the row (its id, else file#number) and the reason."""
    row_id = where
    if isinstance(row, Mapping) and id_key and row.get(id_key) not in (None, ""):
        row_id = str(row[id_key])
    if not isinstance(row, Mapping):
        return SkippedRow(row_id, "it is not an object of fields")
    try:
        return build(row)
    except Unaskable as exc:
        return SkippedRow(row_id, str(exc))
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # a field of the wrong kind
        return SkippedRow(row_id, f"a field is malformed ({exc!s})")


def _lvbench(root: Path) -> Iterator[Row]:
    official = _annotation_files(root, ("video_info.meta.jsonl", "*/video_info.meta.jsonl"))
    if official:
        for v, video_row in enumerate(_read_rows(official[0])):
            where = f"{official[0].name}#{v + 1}"
            if not isinstance(video_row, Mapping) or not isinstance(video_row.get("qa"), list) or (
                    video_row.get("key") in (None, "")):
                yield SkippedRow(where, "its key or qa list is missing or null")
                continue
            video = _find_video(root, [root / "videos" / f"{video_row['key']}.mp4", root / f"{video_row['key']}.mp4"])

            def build(qa: Mapping[str, Any], video: Path = video) -> BenchmarkItem:
                _need(qa, ("uid", "question", "answer"))
                return BenchmarkItem("lvbench", str(qa["uid"]), video, qa, _answer(qa["answer"], tuple("ABCD")),
                                     tuple("ABCD"), _categories(qa, {"task type": "question_type"}))

            for q, qa in enumerate(video_row["qa"]):
                yield _row(build, qa, f"{where} qa {q + 1}", "uid")
        return
    files = _annotation_files(root, ("data/*.parquet", "*.parquet", "*.jsonl", "*.json"))
    if not files:
        raise AnnotationError(f"no LVBench annotations in {root} (expected data/*.parquet or video_info.meta.jsonl)")
    for path in files:
        for n, row in enumerate(_read_rows(path)):

            def build(row: Mapping[str, Any], n: int = n, path: Path = path) -> BenchmarkItem:
                _need(row, ("question", "answer", "video_path"))
                return BenchmarkItem("lvbench", str(row.get("uid") or f"{path.stem}-{n}"),
                                     root / str(row["video_path"]), row, _answer(row["answer"], tuple("ABCD")),
                                     tuple("ABCD"), _categories(row, {"task type": "question_type"}))

            yield _row(build, row, f"{path.name}#{n + 1}", "uid")


def _videomme(root: Path) -> Iterator[Row]:
    files = _annotation_files(root, ("videomme/*.parquet", "*.parquet", "videomme/*.json*", "*.jsonl", "*.json"))
    if not files:
        raise AnnotationError(f"no Video-MME annotations in {root} (expected videomme/test-*.parquet)")

    def build(row: Mapping[str, Any]) -> BenchmarkItem:
        _need(row, ("question_id", "videoID", "question", "answer"))
        options = row.get("options")
        if options is None:
            raise Unaskable("options is null")
        if isinstance(options, str) or not all(isinstance(o, str) and o.strip() for o in options) or not options:
            raise Unaskable("options is not a list of option texts")
        video = _find_video(root, [root / "data" / f"{row['videoID']}.mp4", root / f"{row['videoID']}.mp4"])
        categories = _categories(row, {"duration": "duration", "domain": "domain", "task type": "task_type"},
                                 required=("duration",))
        return BenchmarkItem("videomme", str(row["question_id"]), video, row, _answer(row["answer"], tuple("ABCD")),
                             tuple("ABCD"), categories)

    for path in files:
        for n, row in enumerate(_read_rows(path)):
            yield _row(build, row, f"{path.name}#{n + 1}", "question_id")


def _mlvu(root: Path) -> Iterator[Row]:
    files = _annotation_files(root, ("*.parquet", "*/*.parquet", "*.jsonl", "*.json", "*/*.json"))
    if not files:
        raise AnnotationError(f"no MLVU annotations in {root} (expected sy1998/MLVU_dev's rows)")
    videos = {p.name: p for p in root.rglob("*") if p.suffix in VIDEO_SUFFIXES}
    for path in files:
        for n, row in enumerate(_read_rows(path)):

            def build(row: Mapping[str, Any], n: int = n, path: Path = path) -> BenchmarkItem:
                _need(row, ("video_name", "question", "answer"))
                name = Path(str(row["video_name"])).name
                video = videos.get(name, root / str(row["video_name"]))
                return BenchmarkItem("mlvu", str(row.get("question_id") or f"{path.stem}-{n}"), video, row,
                                     _answer(row["answer"], tuple("ABCD")), tuple("ABCD"),
                                     _categories(row, {"task type": "task_type"}, required=("task_type",)))

            yield _row(build, row, f"{path.name}#{n + 1}", "question_id")


def _longvideobench(root: Path) -> Iterator[Row]:
    files = _annotation_files(root, ("lvb_val.json", "*/lvb_val.json", "validation-*.parquet", "*.jsonl"))
    if not files:
        raise AnnotationError(f"no LongVideoBench annotations in {root} (expected lvb_val.json)")

    def build(row: Mapping[str, Any]) -> BenchmarkItem:
        _need(row, ("id", "question", "option0", "correct_choice", "video_path"))
        choices = tuple(LETTERS[: len(longvideobench_options(row))])
        correct = row["correct_choice"]
        if isinstance(correct, bool) or (not isinstance(correct, int) and not str(correct).strip().isdigit()):
            raise Unaskable(f"correct_choice {correct!r} is not an option number")
        if not 0 <= int(correct) < len(choices):
            raise Unaskable(f"correct_choice {correct!r} names no option (the row has {len(choices)})")
        categories = _categories(row, {"duration": "duration_group", "category": "question_category"})
        video = _find_video(root, [root / "videos" / str(row["video_path"]), root / str(row["video_path"])])
        return BenchmarkItem("longvideobench", str(row["id"]), video, row, LETTERS[int(correct)], choices, categories)

    for path in files:
        for n, row in enumerate(_read_rows(path)):
            yield _row(build, row, f"{path.name}#{n + 1}", "id")


_READERS = {"lvbench": _lvbench, "videomme": _videomme, "mlvu": _mlvu, "longvideobench": _longvideobench}


def load_benchmark(name: str, root: str | Path, *, limit: int | None = None) -> LoadedBenchmark:
    """The benchmark's askable items under `root`, in file order (the first `limit` if given), and the rows
    that cannot be asked (a null or missing field, an answer that names no option, a repeated id).
    AnnotationError when nothing is askable."""
    benchmark(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise AnnotationError(f"benchmark directory {root} does not exist")
    items: list[BenchmarkItem] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    for row in _READERS[name](root):
        if isinstance(row, BenchmarkItem) and row.id in seen:
            row = SkippedRow(row.id, "its id repeats an earlier question's")
        if isinstance(row, SkippedRow):
            skipped.append(row)
            continue
        seen.add(row.id)
        items.append(row)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        if skipped:
            first = skipped[0]
            raise AnnotationError(
                f"a {name} annotation row in {root} cannot be asked ({first.id}: {first.reason}), nor can any "
                f"of the other {len(skipped) - 1} row(s); is this the right benchmark?"
            )
        raise AnnotationError(f"the {name} annotations in {root} hold no questions")
    return LoadedBenchmark(items, skipped)


def load_items(name: str, root: str | Path, *, limit: int | None = None) -> list[BenchmarkItem]:
    """The benchmark's askable items under `root` (`load_benchmark` without the skipped rows)."""
    return load_benchmark(name, root, limit=limit).items
