"""The text track's costs: keyword search over a 24-hour stream of cues, and speech recognition speed.

1. Keyword search (memory/text_index.py, BM25 by bm25s) on one stream of 21,600 4-s segments (24 h),
   each holding one or two subtitle cues (~12 words from a 5,000-word vocabulary), written through
   the real commit path into a private Redis: the index build on first use (reading every segment's
   metadata), then p50 / p95 of `KeywordIndex.search` for 2–3-word questions, beside a FAISS-side
   figure of the same run (a brute-force inner product over 21,600 embeddings of E = 768) as the
   ratio's yardstick; then the cost of one new segment of words: the appendable index (memory/bm25.py)
   reads and appends that segment before the search, where the index it replaced re-indexed the whole
   stream's text (bm25s' eager index, timed here over the same text).
2. ASR real-time factor (models/asr.py) on one minute of espeak-ng speech on CPU: audio seconds per
   wall second. `--asr` names the checkpoint (a directory or a hub id on disk); without it the
   project's tiny random Whisper is used (no download here), which measures the pipeline's plumbing
   only: pass a real size (e.g. openai/whisper-small) for the figure users get.

    .venv/bin/python bench/text_track.py [--hours 24] [--questions 200] [--asr DIR|HUB_ID] [--skip-asr] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tempo.memory import RedisMemoryStore, SegmentRecord, StreamSettings
from tempo.memory.embedded import spawn_redis_server
from tempo.memory.text_index import KeywordIndex, segment_text
from tempo.streaming.subtitles import Cue
from tqdm import tqdm

SECONDS = 4.0  # one segment


def _words(rng: np.random.Generator, vocab: list[str], n: int) -> str:
    ranks = np.minimum(rng.zipf(1.3, n), len(vocab)) - 1  # word frequencies as in speech
    return " ".join(vocab[int(r)] for r in ranks)


def _record(i: int, cues: tuple[Cue, ...], emb: np.ndarray) -> SegmentRecord:
    t = i * SECONDS
    return SegmentRecord(stream="talk", index=i, start=t, end=t + SECONDS, timestamps=t + np.arange(8) / 2.0,
                         frame_size=(256, 512), embedding=emb, cues=cues)


def _append_cost(store: RedisMemoryStore, index: KeywordIndex, rng: np.random.Generator, vocab: list[str], n: int,
                 texts: list[str], rounds: int) -> dict[str, float]:
    """What one new segment of words costs the keyword index. New (memory/bm25.py): the search after
    a commit reads and appends that segment only. Old (the index this replaced, bm25s' eager index):
    the stream's whole text tokenized and indexed again before the search."""
    import bm25s

    emb = np.ones(8, np.float32) / np.sqrt(8)
    new = []
    for r in range(rounds):
        t = (n + r) * SECONDS
        store.put_segments([_record(n + r, (Cue(t, t + 1.8, _words(rng, vocab, 6), "srt", "en"),), emb)])
        t0 = time.perf_counter()
        index.search("talk", "w0001 w0002", k=16)
        new.append(time.perf_counter() - t0)
    old = []
    for _ in range(2):
        t0 = time.perf_counter()
        bm25s.BM25().index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
        old.append(time.perf_counter() - t0)
    return {"append_new_p50_ms": 1000 * float(np.median(new)), "append_old_reindex_ms": 1000 * float(np.median(old))}


def keyword_search(hours: float, questions: int, root: Path) -> dict[str, float]:
    rng = np.random.default_rng(0)
    vocab = [f"w{i:04d}" for i in range(5000)]
    proc, url = spawn_redis_server(root, appendonly=False)
    try:
        store = RedisMemoryStore.connect(url)
        settings = StreamSettings(model_id="bench", embedder_id="bench", embedding_dim=8)
        store.create_stream("talk", {"uri": "/videos/talk.mp4", "kind": "file", "live": False}, settings)
        n = int(hours * 3600 / SECONDS)
        emb = np.ones(8, np.float32) / np.sqrt(8)
        texts: list[str] = []
        for lo in tqdm(range(0, n, 512), desc="segments", unit="batch"):
            records = []
            for i in range(lo, min(n, lo + 512)):
                t = i * SECONDS
                cues = tuple(Cue(t + k * 2.0, t + k * 2.0 + 1.8, _words(rng, vocab, 6), "srt", "en")
                             for k in range(int(rng.integers(1, 3))))
                records.append(_record(i, cues, emb))
                texts.append(segment_text(cues))
            store.put_segments(records)
        index = KeywordIndex(store)
        t0 = time.perf_counter()
        index.search("talk", "w0001", k=16)
        build = time.perf_counter() - t0
        times = []
        for _ in range(questions):
            query = _words(rng, vocab, int(rng.integers(2, 4)))
            t0 = time.perf_counter()
            index.search("talk", query, k=16)
            times.append(time.perf_counter() - t0)
        append = _append_cost(store, index, rng, vocab, n, texts, rounds=min(questions, 20))
        embs = rng.standard_normal((n, 768)).astype(np.float32)
        faiss_like = []
        for _ in range(min(questions, 50)):
            q = rng.standard_normal(768).astype(np.float32)
            t0 = time.perf_counter()
            np.argpartition(-(embs @ q), 16)[:16]
            faiss_like.append(time.perf_counter() - t0)
        return {"segments": n, "build_s": build, "keyword_p50_ms": 1000 * float(np.median(times)),
                "keyword_p95_ms": 1000 * float(np.percentile(times, 95)),
                "flat_vector_p50_ms": 1000 * float(np.median(faiss_like)), **append}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def asr_speed(model: str | None, root: Path) -> dict[str, float | str]:
    from tempo.models.asr import SpeechRecognizer
    from tempo.models.whisper_tiny import write_tiny_whisper
    from tempo.streaming.audio import SPEECH_RATE, decode_audio
    from tempo.streaming.synthetic_text import speak

    model = model or str(write_tiny_whisper(root / "tiny-whisper"))
    text = "the meeting starts now and the budget is due on friday so please send your numbers early " * 8
    samples, _ = decode_audio(str(speak(text, root / "minute.wav")))
    samples = np.resize(samples, 60 * SPEECH_RATE).astype(np.float32)  # exactly one minute
    recognizer = SpeechRecognizer(model)
    t0 = time.perf_counter()
    cues = recognizer.transcribe(samples, grid=SECONDS)
    wall = time.perf_counter() - t0
    return {"model": model, "audio_s": 60.0, "wall_s": wall, "realtime_factor": 60.0 / wall, "cues": len(cues)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="stream length (default 24 h)")
    parser.add_argument("--questions", type=int, default=200, help="keyword searches timed (default 200)")
    parser.add_argument("--asr", default=None, help="Whisper checkpoint for the ASR figure (default: the tiny one)")
    parser.add_argument("--skip-asr", action="store_true", help="only the keyword search")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tempo-bench-text-"))
    try:
        out: dict[str, object] = {"keyword": keyword_search(args.hours, args.questions, root)}
        if not args.skip_asr:
            out["asr"] = asr_speed(args.asr, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return
    k = out["keyword"]
    assert isinstance(k, dict)
    print(f"keyword search over {k['segments']} segments ({args.hours:g} h): build {k['build_s']:.2f} s, "
          f"p50 {k['keyword_p50_ms']:.2f} ms, p95 {k['keyword_p95_ms']:.2f} ms; flat vector search p50 "
          f"{k['flat_vector_p50_ms']:.2f} ms (ratio {k['keyword_p50_ms'] / k['flat_vector_p50_ms']:.2f}×)")
    print(f"keyword index, one new segment of words: append + search {k['append_new_p50_ms']:.2f} ms (p50) "
          f"vs a full re-index {k['append_old_reindex_ms']:.0f} ms before "
          f"({k['append_old_reindex_ms'] / k['append_new_p50_ms']:.0f}x less)")
    if "asr" in out:
        a = out["asr"]
        assert isinstance(a, dict)
        print(f"ASR {a['model']}: {a['audio_s']:.0f} s of audio in {a['wall_s']:.1f} s "
              f"({a['realtime_factor']:.1f}× realtime, {a['cues']} cues)")


if __name__ == "__main__":
    main()
