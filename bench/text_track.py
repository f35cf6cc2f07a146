"""The text track's costs: keyword search over a 24-hour stream of cues, and speech recognition speed.

1. Keyword search (memory/text_index.py, BM25 by bm25s) on one stream of 21,600 4-s segments (24 h),
   each holding one or two subtitle cues (~12 words from a 5,000-word vocabulary), written through
   the real commit path into a private Redis: the index build on first use (reading every segment's
   metadata), then p50 / p95 of `KeywordIndex.search` for 2–3-word questions, beside a FAISS-side
   figure of the same run (a brute-force inner product over 21,600 embeddings of E = 768) as the
   ratio's yardstick; then the cost of one new segment of words: the appendable index (memory/bm25.py)
   reads and appends that segment before the search, where the index it replaced re-indexed the whole
   stream's text (bm25s' eager index, timed here over the same text).
2. ASR real-time factor (models/asr.py, `SpeechRecognizer.transcribe`: voiced pieces cut on the 4-s
   grid, each through transformers' pipeline with timestamps and language) on one minute of
   espeak-ng speech on CPU: audio seconds per wall second, with the encoder's passes and the
   decoder's per-token time apart. Nothing is downloaded: `--asr-size` (default small, the size the
   README names for the figure users get) writes a randomly initialised Whisper with the published
   architecture of openai/whisper-SIZE (d_model, layers, heads, FFN, 80 mel bins, 1500 / 448
   positions, the 51,865-id vocabulary; models/whisper_tiny.py), whose compute is a trained one's.
   Random weights never say end-of-text, so each piece decodes exactly `--tokens-per-30s` tokens per
   30 s of its audio (default 100: English at ~150 words/min is ~75 words per 30 s, ~1.3 BPE
   tokens per word, plus a few timestamp tokens), set by the pipeline's generation kwargs. The tiny
   test Whisper runs over the same audio with the same tokens in the same run, for the ratio.
   The pipeline decodes with 5 beams (its default: the checkpoints' generation configs name none),
   so a decode step is 5 beams' and their KV-cache reordering; the per-token figure is all but the
   encoder per step. Random weights also end a piece anywhere, and Whisper's generate then seeks
   from their last timestamp and passes over the piece again; a trained model ending on a timestamp
   makes one pass (plus its language detection), which the "one pass" figure prices from the
   measured parts.
   `--asr DIR|HUB_ID` times a checkpoint on disk instead of the random one.

    .venv/bin/python bench/text_track.py [--hours 24] [--questions 200] [--asr-size tiny|base|small|medium]
                                         [--asr DIR|HUB_ID] [--tokens-per-30s 100] [--skip-asr]
                                         [--skip-keyword] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tempo.memory import RedisMemoryStore, SegmentRecord, StreamSettings
from tempo.memory.embedded import spawn_redis_server
from tempo.memory.text_index import KeywordIndex, segment_text
from tempo.models.whisper_tiny import WHISPER_SIZES
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


class _Clock:
    """Wall time inside one module's forward calls (forward pre-hook → forward hook), and their count."""

    def __init__(self, *modules: Any) -> None:
        self.seconds, self.calls, self._t0 = 0.0, 0, 0.0
        for i, module in enumerate(modules):
            if i == 0:  # the first module's call opens the interval, the last one's closes it
                module.register_forward_pre_hook(self._start)
            if i == len(modules) - 1:
                module.register_forward_hook(self._stop)

    def _start(self, *_: object) -> None:
        self._t0 = time.perf_counter()

    def _stop(self, *_: object) -> None:
        self.seconds += time.perf_counter() - self._t0
        self.calls += 1


class _FixedTokens:
    """The recognizer's pipeline, made to decode exactly `per_30s` tokens per 30 s of audio of each
    piece (min_new_tokens = max_new_tokens, through the pipeline's generation kwargs): random weights
    never say end-of-text and would decode to the cap, overstating the decoder's share."""

    def __init__(self, pipe: Any, per_30s: int) -> None:
        self.pipe, self.per_30s, self.asked = pipe, per_30s, 0

    def __call__(self, inputs: dict[str, Any], **kwargs: Any) -> Any:
        n = max(1, round(self.per_30s * len(inputs["raw"]) / inputs["sampling_rate"] / 30.0))
        self.asked += n
        generate = {**kwargs.pop("generate_kwargs", {}), "min_new_tokens": n, "max_new_tokens": n}
        return self.pipe(inputs, generate_kwargs=generate, **kwargs)


def one_minute(root: Path) -> np.ndarray:
    """One minute of espeak-ng speech, 16 kHz mono float32."""
    from tempo.streaming.audio import SPEECH_RATE, decode_audio
    from tempo.streaming.synthetic_text import speak

    text = "the meeting starts now and the budget is due on friday so please send your numbers early " * 8
    samples, _ = decode_audio(str(speak(text, root / "minute.wav")))
    return np.resize(samples, 60 * SPEECH_RATE).astype(np.float32)  # exactly one minute


def asr_speed(model: str, samples: np.ndarray, tokens_per_30s: int) -> dict[str, float | int | str]:
    """The product's ASR path (SpeechRecognizer.transcribe) over `samples`, timed as a whole and by part:
    the encoder's passes and the decoder's steps (decoder + output projection, one call per token)."""
    import torch
    from tempo.models.asr import SpeechRecognizer
    from tempo.streaming.audio import SPEECH_RATE

    recognizer = SpeechRecognizer(model)
    whisper = recognizer.pipe.model
    encoder, decoder = _Clock(whisper.get_encoder()), _Clock(whisper.get_decoder(), whisper.proj_out)
    fixed = _FixedTokens(recognizer.pipe, tokens_per_30s)
    recognizer.pipe = fixed
    pieces = recognizer.pieces(samples, grid=SECONDS)
    done = tqdm(total=round(len(samples) / SPEECH_RATE), desc=f"ASR {Path(model).name}", unit="s audio")
    t0 = time.perf_counter()
    cues = recognizer.transcribe(samples, grid=SECONDS, progress=lambda s: done.update(round(s)))
    wall = time.perf_counter() - t0
    done.close()
    audio = len(samples) / SPEECH_RATE
    step = (wall - encoder.seconds) / max(1, decoder.calls)
    # A trained model ends a piece's text on a timestamp, so each piece costs one language detection
    # (an encoder pass and one step) and one transcription pass; random weights end anywhere and
    # Whisper's generate seeks on from their last timestamp, passing over the piece again.
    one_pass = len(pieces) * 2 * encoder.seconds / max(1, encoder.calls) + (fixed.asked + len(pieces)) * step
    return {"model": model, "audio_s": audio, "wall_s": wall, "realtime_factor": audio / wall,
            "pieces": len(pieces), "cues": len(cues), "threads": torch.get_num_threads(),
            "encoder_passes": encoder.calls, "encoder_s": encoder.seconds,
            "encoder_ms_per_pass": 1000 * encoder.seconds / max(1, encoder.calls),
            "tokens_asked": fixed.asked, "decoder_steps": decoder.calls,
            "decoder_forward_ms_per_step": 1000 * decoder.seconds / max(1, decoder.calls),
            "decode_ms_per_token": 1000 * step, "one_pass_s": one_pass, "one_pass_realtime_factor": audio / one_pass}


def asr_figures(size: str, checkpoint: str | None, tokens_per_30s: int, root: Path) -> dict[str, object]:
    """The tiny test checkpoint and a real-size one (`checkpoint`, else a random Whisper of `size`)
    over the same minute of speech, with the same number of tokens decoded."""
    from tempo.models.whisper_tiny import write_random_whisper, write_tiny_whisper
    from transformers.utils import logging

    logging.set_verbosity_error()  # not "both max_new_tokens and max_length are set" once per piece
    samples = one_minute(root)
    tiny = asr_speed(str(write_tiny_whisper(root / "tiny-whisper")), samples, tokens_per_30s)
    if checkpoint is None:
        print(f"writing a random whisper-{size} checkpoint (the architecture of openai/whisper-{size}) …",
              file=sys.stderr)
        checkpoint = str(write_random_whisper(root / f"random-whisper-{size}", size))
    real = asr_speed(checkpoint, samples, tokens_per_30s)
    return {"size": size if checkpoint.endswith(f"random-whisper-{size}") else checkpoint,
            "tokens_per_30s": tokens_per_30s, "real": real, "tiny": tiny,
            "wall_ratio_real_to_tiny": real["wall_s"] / tiny["wall_s"]}  # type: ignore[operator]


def _print_asr(a: dict[str, Any]) -> None:
    real, tiny = a["real"], a["tiny"]
    for label, r in ((f"whisper-{a['size']} (random weights)" if "/" not in a["size"] else a["size"], real),
                     ("tiny test Whisper", tiny)):
        print(f"ASR {label}: {r['audio_s']:.0f} s of audio in {r['wall_s']:.1f} s = {r['realtime_factor']:.2f}× "
              f"realtime on {r['threads']} threads ({r['pieces']} pieces, {r['cues']} cues); encoder "
              f"{r['encoder_passes']} passes × {r['encoder_ms_per_pass']:.0f} ms; decoding {r['decoder_steps']} "
              f"steps × "
              f"{r['decode_ms_per_token']:.1f} ms/token (decoder forward {r['decoder_forward_ms_per_step']:.1f} ms of "
              f"it); one pass per piece as a trained model makes: {r['one_pass_s']:.1f} s = "
              f"{r['one_pass_realtime_factor']:.2f}× realtime")
    print(f"ASR real size vs tiny (same audio, {a['tokens_per_30s']} tokens per 30 s decoded): "
          f"{a['wall_ratio_real_to_tiny']:.1f}× the wall time, "
          f"{real['one_pass_s'] / tiny['one_pass_s']:.1f}× one pass per piece")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="stream length (default 24 h)")
    parser.add_argument("--questions", type=int, default=200, help="keyword searches timed (default 200)")
    parser.add_argument("--asr-size", choices=sorted(WHISPER_SIZES), default="small",
                        help="random Whisper of this real size for the ASR figure (default small)")
    parser.add_argument("--asr", default=None, help="a Whisper checkpoint (DIR or cached hub id) instead of --asr-size")
    parser.add_argument("--tokens-per-30s", type=int, default=100,
                        help="tokens decoded per 30 s of audio (default 100: ~150 words/min of English)")
    parser.add_argument("--skip-asr", action="store_true", help="only the keyword search")
    parser.add_argument("--skip-keyword", action="store_true", help="only the ASR figures")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.tokens_per_30s < 1 or args.tokens_per_30s > 400:
        parser.error("--tokens-per-30s must be between 1 and 400 (Whisper decodes at most 448 tokens per window).")
    root = Path(tempfile.mkdtemp(prefix="tempo-bench-text-"))
    out: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    try:
        if not args.skip_keyword:
            out["keyword"] = keyword_search(args.hours, args.questions, root)
        if not args.skip_asr:
            out["asr"] = asr_figures(args.asr_size, args.asr, args.tokens_per_30s, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["load_average_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out))
        return
    print(f"load average (1 min) {out['load_average']:.1f} before, {out['load_average_after']:.1f} after, "
          f"on {os.cpu_count()} cores")
    if "keyword" in out:
        k = out["keyword"]
        print(f"keyword search over {k['segments']} segments ({args.hours:g} h): build {k['build_s']:.2f} s, "
              f"p50 {k['keyword_p50_ms']:.2f} ms, p95 {k['keyword_p95_ms']:.2f} ms; flat vector search p50 "
              f"{k['flat_vector_p50_ms']:.2f} ms (ratio {k['keyword_p50_ms'] / k['flat_vector_p50_ms']:.2f}×)")
        print(f"keyword index, one new segment of words: append + search {k['append_new_p50_ms']:.2f} ms (p50) "
              f"vs a full re-index {k['append_old_reindex_ms']:.0f} ms before "
              f"({k['append_old_reindex_ms'] / k['append_new_p50_ms']:.0f}x less)")
    if "asr" in out:
        _print_asr(out["asr"])


if __name__ == "__main__":
    main()
