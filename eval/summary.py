"""What a `tempo eval` run leaves beside its per-question results, and the check before it starts.

`write_summary` writes RESULTS.summary.json next to RESULTS.jsonl (lmms-eval-like: the benchmark's
score, per-category accuracy and counts, the model, budget and mode, the rows skipped as unaskable),
replaced atomically after every run. `check_videos` refuses a --data directory whose annotations
name no video that exists (typically --data one level too deep), with a hint, instead of a table of
questions all scored wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tempo._version import __version__
from tempo.eval.datasets import BenchmarkItem, load_benchmark
from tempo.eval.errors import AnnotationError, EvalError, ResultsFileError
from tempo.eval.prompts import benchmark

if TYPE_CHECKING:
    from tempo.eval.harness import EvalReport

# Where each benchmark's videos lie under --data (README "Evaluate").
VIDEO_LAYOUT = {
    "lvbench": "the videos at each row's video_path (or videos/<key>.mp4 beside video_info.meta.jsonl)",
    "videomme": "videomme/ (annotations) and data/<videoID>.mp4 (videos)",
    "mlvu": "the annotation rows and the videos below it",
    "longvideobench": "lvb_val.json and videos/<video_path>",
}


def summary_path(out: Path) -> Path:
    """RESULTS.summary.json beside RESULTS.jsonl (any other suffix: RESULTS.ext.summary.json)."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.summary.json")


def check_videos(name: str, root: Path, items: Sequence[BenchmarkItem]) -> None:
    """AnnotationError (with a hint) when not one of the videos the annotations name exists."""
    if any(item.video.is_file() for item in items):
        return
    root = Path(root).expanduser()
    hint = f"--data should be the benchmark's top directory, holding {VIDEO_LAYOUT[name]}"
    parent = root.resolve().parent
    if parent != root.resolve():
        try:
            if any(item.video.is_file() for item in load_benchmark(name, parent).items):
                hint = f"did you mean --data {parent}? ({hint})"
        except EvalError:
            pass
    raise AnnotationError(
        f"none of the videos the {benchmark(name).title} annotations in {root} name exists "
        f"(e.g. {items[0].video}); {hint}"
    )


def summary(report: EvalReport, model: dict[str, str]) -> dict[str, Any]:
    """The run's scores as one JSON object (accuracies in %, as the printed table)."""
    s = report.settings
    records = report.records
    categories = {
        kind: {value: {"questions": n, "accuracy": round(acc, 4)} for value, (n, acc) in values.items()}
        for kind, values in report.by_category.items()
    }
    metrics: dict[str, Any] = {"accuracy,none": round(report.accuracy, 4)}
    metrics.update({f"{key},none": round(value, 4) for key, value in report.extra.items()})
    out: dict[str, Any] = {
        "benchmark": s.benchmark,
        "title": s.spec.title,
        "mode": s.mode,
        "budget": s.budget,
        "model": model,
        "accuracy": round(report.accuracy, 4),
        "extra": {key: round(value, 4) for key, value in report.extra.items()},
        "by_category": categories,
        "counts": {
            "questions": len(records),
            "correct": sum(1 for r in records if r.get("correct")),
            "answered_now": report.ran,
            "failed": report.failed,
            "guessed": report.guessed,
            "skipped": len(report.skipped),
        },
        "skipped": [{"id": row.id, "reason": row.reason} for row in report.skipped],
        "tokens_per_frame": round(report.tokens_per_frame, 4),
        "results_file": str(s.out),
        "data": str(s.data),
        "limit": s.limit,
        # lmms-eval's results layout: task → "metric,filter" → value, and the samples counted.
        "results": {s.benchmark: metrics},
        "n-samples": {s.benchmark: {"original": len(records) + len(report.skipped), "effective": len(records)}},
        "tempo_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if s.mode == "memory":
        out["top_k"] = s.top_k
    return out


def write_summary(report: EvalReport, model: dict[str, str]) -> Path:
    """Write `summary(...)` to `summary_path(out)` atomically (a temporary file renamed over it)."""
    path = summary_path(report.settings.out)
    text = json.dumps(summary(report, model), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise ResultsFileError(f"cannot write the summary file {path}: {exc.strerror or exc}") from None
    return path
