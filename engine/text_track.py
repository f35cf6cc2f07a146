"""The text track in the engine: cues onto records at ingest, hybrid retrieval, the words in the prompt.

  * `with_cues`: a record with the cues that overlap it (ingest commits them with the segment).
  * `fuse_hits`: FAISS hits ∪ keyword (BM25) hits, fused by reciprocal rank (memory/text_index.py).
  * `segment_words` / `choose_prompt_cues`: the family-neutral text a segment brings to the answer's
    prompt, and which kept segments' cues enter it under a text-token cap (candidates by relevance
    first, then the rest in time order). Any model family renders `segment_words(cues)` after the
    segment's time tag: the Tempo family in models/answer.py, the Qwen3-VL family after a clip's first
    timestamp (models/renditions.py `clip_inputs`, models/remote_answer.py `clip_content`).
  * `text_reserve` / `plan_with_cues`: the one rule every plan (one stream or several) follows: the
    words' tokens are taken from the visual budget before ATA, then the plan's kept segments get cues.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from tempo.memory.index import SearchHit
from tempo.memory.records import SegmentRecord
from tempo.memory.text_index import KeywordHit, replace_cues, rrf_fuse
from tempo.models.text import plain_text
from tempo.streaming.subtitles import Cue, CueTrack

if TYPE_CHECKING:
    from tempo.engine.recall import AllocationPlan

TEXT_TOKENS = 1024  # default cap on cue words in the answer's prompt (AskSettings.text_tokens)


def with_cues(record: SegmentRecord, track: CueTrack) -> SegmentRecord:
    """`record` with the track's cues that overlap [start, end) of it."""
    return dataclasses.replace(record, cues=tuple(track.overlapping(record.start, record.end)))


def fuse_hits(stream: str, faiss_hits: Sequence[SearchHit], keyword_hits: Sequence[KeywordHit],
              k: int) -> list[SearchHit]:
    """FAISS hits ∪ keyword hits (each list's top `k`), ordered by reciprocal rank fusion; a hit's
    score becomes its fused score (Σ 1/(60 + rank)). So a segment whose words match joins the
    candidates even when its picture ranks low. Without keyword hits the FAISS hits are unchanged."""
    faiss_hits, keyword_hits = list(faiss_hits)[:k], list(keyword_hits)[:k]
    if not keyword_hits:
        return faiss_hits
    where = {h.index: (h.start, h.end) for h in faiss_hits}
    where.update({h.index: (h.start, h.end) for h in keyword_hits if h.index not in where})
    # Keyword hits listed first: on a tie, matching words beat a similar picture (they are exact).
    fused = rrf_fuse([[h.index for h in keyword_hits], [h.index for h in faiss_hits]])
    return [SearchHit(stream, i, round(score, 6), *where[i]) for i, score in fused]


def fuse_across_streams(faiss_hits: Sequence[SearchHit], keyword_hits: Sequence[tuple[str, KeywordHit]],
                        k: int) -> list[SearchHit]:
    """`fuse_hits` over several streams at once: each list ranked as a whole (FAISS by similarity,
    keywords by BM25 score), fused by reciprocal rank, so the scores of all streams are on one scale."""
    if not keyword_hits:
        return sorted(faiss_hits, key=lambda h: -h.score)[:k]
    faiss_ranked = sorted(faiss_hits, key=lambda h: -h.score)
    keyword_ranked = sorted(keyword_hits, key=lambda sh: -sh[1].score)
    where = {(h.stream, h.index): (h.start, h.end) for h in faiss_ranked}
    for s, h in keyword_ranked:
        where.setdefault((s, h.index), (h.start, h.end))
    fused = rrf_fuse([[(s, h.index) for s, h in keyword_ranked], [(h.stream, h.index) for h in faiss_ranked]])
    return [SearchHit(s, i, round(score, 6), *where[(s, i)]) for (s, i), score in fused[:k]]


def segment_words(cues: Sequence[Cue]) -> str:
    """A segment's cues as prompt text: `Subtitles: "..."` (a transcript: `Speech: "..."`) per cue.
    Markup of the models' special tokens (`<|im_end|>`, `<|video_pad|>`) in a cue is written without
    its bars: a subtitle file must not end the user's turn or add a video token to the prompt."""
    parts = []
    for c in cues:
        label = "Speech" if c.source == "asr" else "Subtitles"
        text = plain_text(c.text)
        parts.append(f'{label} {c.start:.1f}-{c.end:.1f} s: "{text}"')
    return "\n" + "\n".join(parts) + "\n" if parts else ""


def token_counter(model: Any) -> Callable[[str], int]:
    """How the model counts prompt tokens (`count_text_tokens`), else a safe over-estimate
    (one token per 2 characters)."""
    count = getattr(model, "count_text_tokens", None)
    return count if callable(count) else (lambda text: len(text) // 2 + 1)


def choose_prompt_cues(
    indices: np.ndarray,
    relevance: np.ndarray,
    candidate: np.ndarray,
    cues: dict[int, list[Cue]],
    *,
    cap: int,
    count: Callable[[str], int],
) -> dict[int, tuple[Cue, ...]]:
    """Which segments' cues enter the prompt: whole segments, candidates by relevance (highest first),
    then anchors in time order, while their words fit in `cap` tokens. {index: cues} of those kept."""
    order = sorted(
        range(len(indices)),
        key=lambda r: (0, -float(relevance[r]), r) if candidate[r] and not np.isnan(relevance[r]) else (1, 0.0, r),
    )
    left = int(cap)
    chosen: dict[int, tuple[Cue, ...]] = {}
    for r in order:
        segment_cues = cues.get(int(indices[r]))
        if not segment_cues or left <= 0:
            continue
        cost = count(segment_words(segment_cues))
        if cost <= left:
            chosen[int(indices[r])] = tuple(segment_cues)
            left -= cost
    return chosen


def cues_key(cues: dict[int, tuple[Cue, ...]]) -> str:
    """The plan's prompt words as part of an answer-cache key (other words, another answer)."""
    return repr(sorted((i, [c.to_row() for c in cs]) for i, cs in cues.items()))


def text_reserve(text_tokens: int, budget: int, has_text: bool) -> int:
    """Tokens of the visual budget set aside for cue words: `text_tokens`, at most half the budget, and
    none when the streams asked about carry no text (their budget stays whole)."""
    return min(int(text_tokens), int(budget) // 2) if text_tokens > 0 and has_text else 0


def plan_with_cues(
    plan: AllocationPlan, cues: dict[int, list[Cue]], *, cap: int, count: Callable[[str], int]
) -> AllocationPlan:
    """`plan` carrying the cues (keyed as its indices) that enter the prompt within `cap` tokens, chosen
    among the rows the answerer reads: every row of a Tempo plan, the rows given a rendition in the
    Qwen3-VL family (a segment too poor for its smallest rendition is not shown, so neither are its words)."""
    read = np.ones(len(plan.indices), bool)
    if plan.renditions is not None:
        read = np.array([r is not None for r in plan.renditions], bool)
    rows = np.flatnonzero(read)
    chosen = choose_prompt_cues(plan.indices[rows], plan.relevance[rows], plan.candidate[rows], cues, cap=cap,
                                count=count)  # fmt: skip
    return dataclasses.replace(plan, cues=chosen)


def add_text_track(store: Any, stream: str, track: CueTrack) -> tuple[int, int]:
    """Give an already ingested stream's segments the track's cues they overlap (`place_cues`); the
    keyword index rebuilds. Returns (segments updated, cues placed). UnknownStreamError for an unknown
    stream."""
    store.stream_info(stream)  # UnknownStreamError names the known streams
    records = store.iter_segments(stream, tokens=False, embedding=False, recompress=False)
    return place_cues(store, stream, records, track)


def place_cues(store: Any, stream: str, records: Iterable[SegmentRecord], track: CueTrack) -> tuple[int, int]:
    """Give committed `records` the track's cues each overlaps, beside the cues it has (a cue already
    there is not added twice), one atomic rewrite per segment that changes. Returns (segments updated,
    cues placed): `tempo subtitles add` and the later transcription (engine/speech_later.py) both."""
    changed: dict[int, list[Cue]] = {}
    placed = 0
    for record in records:
        new = [c for c in track.overlapping(record.start, record.end) if c not in record.cues]
        if new:
            changed[record.index] = sorted([*record.cues, *new], key=lambda c: (c.start, c.end))
            placed += len(new)
    return replace_cues(store, stream, changed), placed


def transcribe_source(source: str, asr: str, *, grid: float, progress: bool = True) -> CueTrack:
    """The speech of a file's audio track as cues (models/asr.py; Whisper from a directory or hub id),
    decoded beside its video, pieces cut on the segment grid (`grid` seconds). NoAudioStreamError
    (one sentence) for a file without audio; no voiced audio gives an empty track and a problem line."""
    from tempo.models.asr import SpeechRecognizer
    from tempo.streaming.audio import SPEECH_RATE, decode_audio
    from tqdm import tqdm

    samples, offset = decode_audio(source)
    recognizer = SpeechRecognizer(asr)
    with tqdm(total=round(len(samples) / SPEECH_RATE, 1), unit="s", desc="speech", disable=not progress) as bar:
        cues = recognizer.transcribe(samples, offset=offset, grid=grid, progress=lambda s: bar.update(round(s, 1)))
    problems = [] if cues else [f"no speech was recognised in the audio of {source!r}"]
    return CueTrack(cues, problems)
