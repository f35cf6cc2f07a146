"""`tempo eval`: run one benchmark through the reference pipeline or memory, resumably, and score it.

Per question: the release's text (`tempo.eval.prompts`) is both compressor query and LLM question,
the answer is generated with the release's length (16 tokens; 32 for LongVideoBench) and context limit
(32768), and the letter is read from it as the benchmark's lmms-eval task reads it
(`tempo.eval.answers`). Every finished question is appended to the results file (JSON lines) at
once, so an interrupted run continues where it stopped; questions whose video could not be read are
recorded (scored wrong, as the release scores an empty answer) and tried again on the next run.

Reference mode calls `tempo.engine.reference.answer_video`, the pipeline of `tempo ask VIDEO`.
Memory mode ingests each video once into a memory stream and asks through `Conversations.ask_once` (top-K
candidates recompressed, the rest anchors), the path of `tempo ask --stream`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tempo.eval.answers import score_letter
from tempo.eval.datasets import BenchmarkItem, SkippedRow, load_benchmark
from tempo.eval.errors import ResultsFileError
from tempo.eval.identity import describe, model_identity, same_model
from tempo.eval.prompts import BenchmarkSpec, benchmark
from tempo.eval.subtitles import with_subtitles
from tempo.eval.summary import check_videos, write_summary
from tempo.settings import AskSettings
from tempo.streaming.errors import StreamingError
from tqdm import tqdm

Mode = Literal["reference", "memory"]

# DESIGN §2's table: Tempo-6B's accuracy (%) by budget, and its average tokens per frame.
PAPER_RESULTS: dict[int, dict[str, float]] = {
    4096: {"longvideobench": 64.5, "mlvu": 75.6, "videomme": 67.8, "videomme long": 57.8, "lvbench": 52.7},
    8192: {"longvideobench": 65.1, "mlvu": 75.2, "videomme": 67.7, "videomme long": 57.0, "lvbench": 52.3},
}
PAPER_TOKENS_PER_FRAME = {4096: "2.8–3.6", 8192: "3.1–4.3"}


@dataclass(frozen=True)
class EvalSettings:
    """One run: which benchmark, where its data lies, which model and how it answers."""

    benchmark: str
    data: Path
    model: str | None = None  # checkpoint directory or hub id on disk (None: $TEMPO_MODEL / default)
    budget: int = 8192
    mode: Mode = "reference"
    limit: int | None = None  # first N questions only
    out: Path = Path("results.jsonl")
    device: str | None = None
    embedder: str | None = None  # memory mode: SigLIP directory (None: beside the checkpoint)
    top_k: int = AskSettings.top_k  # memory mode: FAISS candidates per question, as `tempo ask --stream`
    redis_url: str | None = None  # memory mode: None = the embedded server under $TEMPO_HOME
    home: Path | None = None
    subtitles: bool = False  # Video-MME with subtitles (lmms-eval's videomme_w_subtitle prompt)

    @property
    def spec(self) -> BenchmarkSpec:
        return benchmark(self.benchmark)

    def run_key(self, model: dict[str, str] | None = None) -> dict[str, Any]:
        """What a results file must agree on to be resumed: benchmark, mode, budget and the model
        (`model_identity`: path and fingerprint; compared by fingerprint) — memory mode: the top-K too,
        which changes which segments are recompressed, so records of another top-K do not mix in."""
        key: dict[str, Any] = {"benchmark": self.benchmark, "mode": self.mode, "budget": self.budget,
                               "model": model if model is not None else (self.model or "")}
        if self.mode == "memory":
            key["top_k"] = self.top_k
        if self.subtitles:
            key["subtitles"] = True
        return key


@dataclass
class EvalReport:
    """Scores of the records of one run. Accuracy in %, tokens per frame averaged over questions."""

    settings: EvalSettings
    records: list[dict[str, Any]]
    accuracy: float
    by_category: dict[str, dict[str, tuple[int, float]]]  # category kind → value → (questions, accuracy %)
    tokens_per_frame: float
    failed: int  # questions whose video could not be read (scored wrong)
    guessed: int  # LongVideoBench answers with no letter: scored by a seeded random guess, as lmms-eval does
    ran: int = 0  # questions answered by this invocation (the rest came from the results file)
    extra: dict[str, float] = field(default_factory=dict)  # e.g. "videomme long"
    skipped: list[SkippedRow] = field(default_factory=list)  # annotation rows that could not be asked

    def markdown(self) -> str:
        return render_markdown(self)


# ---- results file -------------------------------------------------------------------------------
def read_results(path: Path, run_key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished records by question id (the last record of an id wins). A line cut short by a crash
    is dropped from the file; records of a different run refuse the file."""
    if not path.exists():
        return {}
    try:
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):  # a write cut short: drop the partial line, keep the rest
            raw = raw[: raw.rfind(b"\n") + 1]
            with path.open("r+b") as fh:
                fh.truncate(len(raw))
    except OSError as exc:
        raise ResultsFileError(f"cannot use {path} as the results file: {exc.strerror or exc}") from None
    records: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = record["run"]
        except (ValueError, KeyError, TypeError):
            raise ResultsFileError(f"{path} line {n} is not a tempo eval record; choose another --out") from None
        if not _same_run(key, run_key):
            raise ResultsFileError(
                f"{path} holds results of another run ({key.get('benchmark')}, {key.get('mode')} mode, budget "
                f"{key.get('budget')}, model {describe(key.get('model'))}"
                + (f", top-K {key.get('top_k', 'unrecorded')}" if key.get("mode") == "memory" else "")
                + "); choose another --out"
            )
        records[str(record["id"])] = record
    return records


def _same_run(recorded: Any, run_key: dict[str, Any]) -> bool:
    if not isinstance(recorded, dict) or {k: v for k, v in recorded.items() if k != "model"} != {
            k: v for k, v in run_key.items() if k != "model"}:
        return False
    model = run_key.get("model")
    return same_model(recorded.get("model"), model) if isinstance(model, dict) else recorded.get("model") == model


def _append(path: Path, record: dict[str, Any]) -> None:
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise ResultsFileError(f"cannot write the results file {path}: {exc.strerror or exc}") from None


# ---- answering ----------------------------------------------------------------------------------
Answerer = Callable[[BenchmarkItem, str], tuple[str, float]]  # (item, question) → (answer, tokens/frame)


def _inference_config(settings: EvalSettings) -> Any:
    return evaluation_config(settings.spec)


def evaluation_config(spec: BenchmarkSpec) -> Any:
    """The release's evaluation load-time settings (fps, context limit), as the model's config."""
    from tempo.models import TempoInferenceConfig

    return TempoInferenceConfig(fps=spec.fps, context_limit=spec.context_limit)


def evaluation_settings(spec: BenchmarkSpec, budget: int, top_k: int | None = None) -> AskSettings:
    """The release's evaluation settings of a question (budget, answer length); top-K for memory mode."""
    return AskSettings().with_inputs(budget=budget, max_new_tokens=spec.max_new_tokens, top_k=top_k)


class ReferencePipeline:
    """The model of `tempo ask VIDEO`, loaded once; answers questions about whole videos in the
    reference mode (every segment compressed for the question) with one `AskSettings`. Used by
    `tempo eval` and the lmms-eval model."""

    def __init__(self, model: str | None, config: Any, settings: AskSettings, *, device: str | None = None,
                 min_frames: int = 8, max_frames: int = 1024) -> None:
        from tempo.models import resolve_model_name
        from tempo.models.checkpoint import resolve_model_dir
        from tempo.models.qwen3vl_family import load_model_family
        from tempo.streaming import SamplingConfig

        self.config = config
        self.settings = settings
        self.model_id = resolve_model_name(model)
        # The family is the checkpoint's: a Qwen3-VL directory answers through renditions (issue 23).
        self.model = load_model_family(resolve_model_dir(self.model_id), device=device, config=config)
        # The release's whole-file sampling with its evaluation scripts' frame bounds (8 to 1024).
        self.sampling = SamplingConfig(fps=config.fps, window=config.window, max_edge=config.max_edge,
                                       sampling="release", min_frames=min_frames, max_frames=max_frames)

    def ask(self, video: str, question: str, *, max_new_tokens: int | None = None) -> Any:
        """The `TurnResult` of `question` about the file `video` (`max_new_tokens` overrides the
        settings' answer length)."""
        from tempo.engine.reference import answer_video
        from tempo.streaming import iter_segments

        settings = self.settings.with_inputs(max_new_tokens=max_new_tokens)
        with iter_segments(video, config=self.sampling) as segments:
            return answer_video(self.model, segments, question, settings=settings, source=video,
                                model_id=self.model_id)


def reference_answerer(settings: EvalSettings) -> Answerer:
    """Answer each question like `tempo ask VIDEO QUESTION`: the whole video, every segment for the query."""
    spec = settings.spec
    pipeline = ReferencePipeline(settings.model, _inference_config(settings),
                                 evaluation_settings(spec, settings.budget), device=settings.device,
                                 min_frames=spec.min_frames, max_frames=spec.max_frames)

    def answer(item: BenchmarkItem, question: str) -> tuple[str, float]:
        result = pipeline.ask(str(item.video), question)
        return result["answer"], result["avg_tokens_per_frame"]

    return answer


def memory_stream_name(item: BenchmarkItem) -> str:
    """One memory stream per video file: readable, and unique by the file's absolute path."""
    digest = hashlib.sha1(str(item.video.resolve()).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in item.video.stem)[:60]
    return f"eval-{item.benchmark}-{stem}-{digest}"


# Memory mode's streams live under their own key prefix in the same Redis (and their FAISS snapshot in
# HOME/eval), so `tempo streams`, the console and the user's index never see them; a later run reuses them.
EVAL_PREFIX = "tempo-eval"


def eval_service(settings: EvalSettings) -> Any:
    """A `TempoService` whose memory is the evaluation's own namespace (`EVAL_PREFIX`)."""
    from tempo.memory.embedded import connect, tempo_home
    from tempo.memory.index import SegmentIndex
    from tempo.memory.store import RedisMemoryStore
    from tempo.service import TempoService, loaded_once

    class EvalService(TempoService):
        @loaded_once
        def store(self) -> RedisMemoryStore:
            return RedisMemoryStore(connect(self.redis_url, self.home), prefix=EVAL_PREFIX,
                                    home=tempo_home(self.home) / "eval")

        @loaded_once
        def index(self) -> SegmentIndex:
            return SegmentIndex.open(self.store, tempo_home(self.home) / "eval")

    return EvalService(model=settings.model, embedder=settings.embedder, redis_url=settings.redis_url,
                       home=settings.home, device=settings.device, inference=_inference_config(settings))


def memory_answerer(settings: EvalSettings) -> Answerer:
    """Answer each question from memory like `tempo ask --stream`: ingest the video once (into the
    evaluation's own namespace), then ask."""
    from tempo.agent.conversations import Conversations

    service = eval_service(settings)
    ingested: set[str] = set()
    conversations = Conversations(service, settings=evaluation_settings(settings.spec, settings.budget,
                                                                         settings.top_k))

    def answer(item: BenchmarkItem, question: str) -> tuple[str, float]:
        stream = memory_stream_name(item)
        if stream not in ingested:
            service.ingest(str(item.video), stream, progress=False)  # resumes: a finished stream is a no-op
            ingested.add(stream)
        result = conversations.ask_once(stream, question)
        return result["answer"], result["avg_tokens_per_frame"]

    return answer


# ---- the run ------------------------------------------------------------------------------------
def run_eval(settings: EvalSettings, *, progress: bool = True, answerer: Answerer | None = None) -> EvalReport:
    """Answer every unfinished question of the benchmark, appending each to `settings.out`; score all."""
    spec = settings.spec
    loaded = load_benchmark(settings.benchmark, settings.data, limit=settings.limit)
    items = loaded.items
    if settings.out.is_dir():
        raise ResultsFileError(f"cannot use {settings.out} as the results file: it is a directory")
    check_videos(settings.benchmark, settings.data, items)  # a wrong --data is said before a missing model
    if settings.subtitles:
        items = [dataclasses.replace(it, doc=with_subtitles(it.doc, Path(settings.data).expanduser(), it.video))
                 for it in items]
    identity = model_identity(settings.model)
    run_key = settings.run_key(identity)
    done = read_results(settings.out, run_key)
    todo = [it for it in items if it.id not in done or done[it.id].get("error")]
    try:
        settings.out.parent.mkdir(parents=True, exist_ok=True)
        settings.out.touch()
    except OSError as exc:
        raise ResultsFileError(f"cannot write the results file {settings.out}: {exc.strerror or exc}") from None
    ran = 0
    if todo:
        if answerer is None:
            answerer = (reference_answerer if settings.mode == "reference" else memory_answerer)(settings)
        bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=spec.title, unit="q",
                   disable=not progress, dynamic_ncols=True)
        for item in todo:
            record = _answer_one(item, answerer, run_key)
            _append(settings.out, record)
            done[item.id] = record
            ran += 1
            bar.update(1)
        bar.close()
    report = score([done[it.id] for it in items if it.id in done], settings)
    report.ran = ran
    report.skipped = loaded.skipped
    write_summary(report, identity)
    return report


def _answer_one(item: BenchmarkItem, answerer: Answerer, run_key: dict[str, Any]) -> dict[str, Any]:
    question = item.question
    t0 = time.perf_counter()
    error = None
    try:
        response, tokens_per_frame = answerer(item, question)
    except StreamingError as exc:  # a missing or unreadable video: the release answers "" and moves on
        response, tokens_per_frame, error = "", None, str(exc)
    extracted = score_letter(item.benchmark, response, item.choices, seed=item.id)
    return {
        "run": run_key,
        "id": item.id,
        "video": str(item.video),
        "question": question,
        "response": response,
        "letter": extracted.letter,
        "guessed": extracted.guessed,
        "answer": item.answer,
        "correct": extracted.letter.upper() == item.answer.upper() and error is None,
        "categories": item.categories,
        "tokens_per_frame": tokens_per_frame,
        "seconds": round(time.perf_counter() - t0, 3),
        "error": error,
    }


# ---- scoring ------------------------------------------------------------------------------------
def _accuracy(records: Iterable[dict[str, Any]]) -> tuple[int, float]:
    rows = list(records)
    return len(rows), (100.0 * sum(bool(r["correct"]) for r in rows) / len(rows) if rows else 0.0)


def score(records: list[dict[str, Any]], settings: EvalSettings) -> EvalReport:
    """Accuracy overall (the benchmark's own aggregate) and per category, tokens per frame."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for kind, values in (r.get("categories") or {}).items():
            for value in values:
                groups[kind][value].append(r)
    by_category = {kind: {v: _accuracy(rs) for v, rs in sorted(vals.items())} for kind, vals in groups.items()}
    if settings.benchmark == "mlvu" and by_category.get("task type"):
        # MLVU's score (lmms-eval's mlvu_aggregate_results_dev) is the mean over its task types.
        accs = [acc for _, acc in by_category["task type"].values()]
        overall = sum(accs) / len(accs)
    else:
        overall = _accuracy(records)[1]
    extra = {}
    if settings.benchmark == "videomme" and "long" in by_category.get("duration", {}):
        extra["videomme long"] = by_category["duration"]["long"][1]
    tpf = [r["tokens_per_frame"] for r in records if r.get("tokens_per_frame") is not None]
    return EvalReport(
        settings=settings,
        records=records,
        accuracy=overall,
        by_category=by_category,
        tokens_per_frame=sum(tpf) / len(tpf) if tpf else 0.0,
        failed=sum(1 for r in records if r.get("error")),
        guessed=sum(1 for r in records if r.get("guessed")),
        extra=extra,
    )


def render_markdown(report: EvalReport) -> str:
    """This run beside the paper's row for the same budget, then the per-category breakdown."""
    s = report.settings
    spec = s.spec
    columns = [spec.title] + (["Video-MME long"] if s.benchmark == "videomme" else [])
    keys = [s.benchmark] + (["videomme long"] if s.benchmark == "videomme" else [])
    lines = [
        f"| | budget | mode | questions | {' | '.join(columns)} | tokens/frame |",
        "|---|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    paper = PAPER_RESULTS.get(s.budget)
    if paper is not None:
        cells = " | ".join(f"{paper[k]:.1f}" for k in keys)
        lines.append(f"| Tempo-6B (paper) | {s.budget} | reference | all | {cells} | "
                     f"{PAPER_TOKENS_PER_FRAME[s.budget]} |")
    ours = [report.accuracy] + [report.extra.get(k) for k in keys[1:]]
    cells = " | ".join("–" if v is None else f"{v:.1f}" for v in ours)  # "–": no question of that kind
    lines.append(f"| this run | {s.budget} | {s.mode} | {len(report.records)} | {cells} | "
                 f"{report.tokens_per_frame:.2f} |")
    if paper is None:
        lines.append(f"\n(The paper reports budgets 4096 and 8192 only; nothing to compare at {s.budget}.)")
    for kind, values in report.by_category.items():
        lines += ["", f"| {spec.title} by {kind} | questions | accuracy % |", "|---|---|---|"]
        lines += [f"| {value} | {n} | {acc:.1f} |" for value, (n, acc) in values.items()]
    notes = []
    if s.benchmark == "mlvu":
        notes.append("MLVU's score is the mean of its task types' accuracies (as lmms-eval computes it).")
    if report.failed:
        notes.append(f"{report.failed} question(s) failed to read their video and count as wrong; "
                     "run the same command again to retry them.")
    if report.skipped:
        shown = "; ".join(f"{row.id}: {row.reason}" for row in report.skipped[:5])
        more = f"; and {len(report.skipped) - 5} more (all in the summary file)" if len(report.skipped) > 5 else ""
        notes.append(f"{len(report.skipped)} annotation row(s) could not be asked and were skipped ({shown}{more}).")
    if report.guessed:
        notes.append(f"{report.guessed} answer(s) named no option letter and were scored by a seeded random "
                     "guess, as lmms-eval's LongVideoBench task does.")
    if s.mode == "memory":
        notes.append("Memory mode samples a fixed 2 fps grid and recompresses only the top-K candidates: "
                     "a deviation from the paper's reference method, measured here.")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)
