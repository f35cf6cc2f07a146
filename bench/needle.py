"""Needle in a haystack for memory: does answering from memory find what the reference method finds?

Generates a long video (1 h by default) from a background — a moving synthetic scene, or your own
video looped (--background) — with short "needle" clips inserted at known times: a large coloured
square, a word drawn on screen, a white flash. Each needle gets a multiple-choice question ("What
word appears on the screen?", "When does the screen flash white?"). Then it answers every question
in the reference mode (`tempo ask VIDEO`: every segment compressed for the question) and from memory
(`tempo ask --stream` after one ingest) at K = 4, 8, 16 candidates, and reports per needle and mode:

  recall     the needle's segment was among the segments recompressed for the question (the
             reference compresses every segment, so 1 there by construction)
  share      the share of the visual budget ATA gave the needle's segment(s), in %
  correct    the option letter read from the answer (lmms-eval's rule) is the right one
  time err   |cited time − needle time| in seconds, for the times the answer cites ("-" if none)

    .venv/bin/python bench/needle.py [--duration 3600] [--needles 6] [--ks 4,8,16] [--budget 8192]
    .venv/bin/python bench/needle.py --real-model /models/Tempo-6B --embedder /models/siglip [--background my.mp4]

Without --real-model a tiny randomly initialised checkpoint is written and used: every stage runs
for real, but its answers are noise, so the numbers say nothing about the method (the report says
so). With the released weights (--real-model) the same table measures what memory mode loses
against the reference; README "Benchmarks" says where those numbers go.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from tempo.engine.citations import find_times
from tempo.eval.answers import extract_choice
from tempo.eval.prompts import LETTERS, lvbench_prompt

# 5×7 bitmaps of the letters the needle words use ("#" = ink).
GLYPHS = {
    "A": ".###.#...##...#######...##...##...#", "B": "####.#...#####.#...##...##...#####.",
    "C": ".###.#...##....#....#....#...#.###.", "D": "####.#...##...##...##...##...#####.",
    "E": "######....####.#....#....#....#####", "F": "######....####.#....#....#....#....",
    "G": ".###.#...##....#.####...##...#.###.", "K": "#...##..#.###..#.#..#..#.#...##...#",
    "M": "#...###.###.#.##...##...##...##...#", "N": "#...###..##.#.##..###...##...##...#",
    "O": ".###.#...##...##...##...##...#.###.", "P": "####.#...##...#####.#....#....#....",
    "S": ".#####....#.....###.....#....#####.", "T": "#####..#....#....#....#....#....#..",
    "U": "#...##...##...##...##...##...#.###.", "X": "#...##...#.#.#...#...#.#.#...##...#",
    "Y": "#...##...#.#.#...#....#....#....#..",
}
WORDS = ("CAT", "DOG", "SUN", "BOX", "KEY", "MAP", "FOX", "PEN")
COLOURS = {"red": (220, 30, 30), "green": (30, 190, 60), "blue": (40, 70, 230), "yellow": (235, 215, 30)}
KINDS = ("shape", "word", "flash")
NEEDLE_SECONDS = {"shape": 3.0, "word": 3.0, "flash": 1.0}
SEGMENT_SECONDS = 4.0  # 8 frames at 2 fps (DESIGN §2)


@dataclass(frozen=True)
class Needle:
    kind: str
    start: float  # seconds
    end: float  # seconds
    value: str  # the colour, the word, or "" for a flash
    question: str  # the multiple-choice text sent to the model
    answer: str  # the right letter


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def plan_needles(count: int, duration: float, rng: np.random.Generator) -> list[Needle]:
    """`count` needles, kinds in turn, one per equal slice of the video at a random place in it."""
    needles = []
    slice_len = duration / count
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        length = NEEDLE_SECONDS[kind]
        start = float(round(i * slice_len + rng.uniform(0.2, 0.8) * max(slice_len - length, 0.0), 1))
        if kind == "shape":
            value = str(rng.choice(list(COLOURS)))
            options = list(COLOURS)
            text = "What colour is the large square that appears in the video?"
        elif kind == "word":
            options = [str(w) for w in rng.choice(WORDS, size=4, replace=False)]
            value = options[int(rng.integers(4))]
            text = "What word appears on the screen?"
        else:
            value = ""
            others = [t for t in np.linspace(0.1 * duration, 0.9 * duration, 7) if abs(t - start) > 0.1 * duration]
            times = [start, *[float(t) for t in rng.choice(others, size=3, replace=False)]]
            options = [_clock(t) for t in times]
            value = options[0]
        rng.shuffle(options)
        letter = LETTERS[options.index(value)]
        if kind == "flash":
            text = "When does the screen flash white?"
        question = lvbench_prompt({"question": text, "options": options})
        needles.append(Needle(kind, start, start + length, value, question, letter))
    return needles


def _draw_word(frame: np.ndarray, word: str) -> None:
    h, w, _ = frame.shape
    scale = max(2, min(h // 10, w // (6 * len(word) + 2)))
    x0 = (w - 6 * len(word) * scale) // 2
    y0 = (h - 7 * scale) // 2
    frame[y0 - scale : y0 + 8 * scale, x0 - scale : x0 + 6 * len(word) * scale] = 255  # a white card
    for n, letter in enumerate(word):
        bits = np.array([c == "#" for c in GLYPHS[letter]]).reshape(7, 5)
        ink = np.kron(bits, np.ones((scale, scale), dtype=bool))
        x = x0 + 6 * n * scale
        frame[y0 : y0 + 7 * scale, x : x + 5 * scale][ink] = 0


def _background_frames(size: tuple[int, int], fps: float, background: Path | None):
    """Endless (H, W, 3) uint8 frames: a drifting textured scene, or the user's video looped."""
    w, h = size
    if background is None:
        rng = np.random.default_rng(0)
        texture = rng.integers(60, 160, (h, 2 * w, 3), dtype=np.uint8)
        n = 0
        while True:
            shift = int(n * 2) % w  # a slow pan
            yield np.ascontiguousarray(texture[:, shift : shift + w])
            n += 1
    while True:
        with av.open(str(background)) as container:
            stream = container.streams.video[0]
            src_fps = float(stream.average_rate or fps)
            step, acc = src_fps / fps, 0.0
            for frame in container.decode(stream):
                acc += 1.0
                if acc < step:
                    continue
                acc -= step
                yield frame.reformat(width=w, height=h, format="rgb24").to_ndarray()


def write_needle_video(path: Path, duration: float, needles: list[Needle], *, fps: float, size: tuple[int, int],
                       background: Path | None) -> None:
    """Encode the haystack with its needles (H.264); frame i is shown at i / fps seconds."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}
        frames = _background_frames(size, fps, background)
        for i in range(round(duration * fps)):
            t = i / fps
            frame = next(frames).copy()
            for nd in needles:
                if nd.start <= t < nd.end:
                    if nd.kind == "shape":
                        side = min(h, w) // 2
                        y, x = (h - side) // 2, (w - side) // 2
                        frame[y : y + side, x : x + side] = COLOURS[nd.value]
                    elif nd.kind == "word":
                        _draw_word(frame, nd.value)
                    else:
                        frame[:] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@dataclass
class Row:
    needle: int
    mode: str
    recall: float
    share: float  # %
    correct: bool
    time_error: float | None  # seconds


def _needle_share(starts: np.ndarray, ends: np.ndarray, counts: np.ndarray, nd: Needle) -> tuple[np.ndarray, float]:
    hit = (starts < nd.end) & (ends > nd.start)
    total = float(counts.sum())
    return hit, (100.0 * float(counts[hit].sum()) / total if total else 0.0)


def _time_error(answer: str, nd: Needle) -> float | None:
    times = find_times(answer)
    if not times:
        return None
    return min(max(0.0, nd.start - m.end, m.start - nd.end) for m in times)


def run(args: argparse.Namespace) -> int:
    from tempo.agent.conversations import Conversations
    from tempo.engine.reference import answer_video
    from tempo.memory.embedded import spawn_redis_server
    from tempo.models import TempoInferenceConfig, TempoModel
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.service import TempoService
    from tempo.settings import AskSettings
    from tempo.streaming import SamplingConfig, iter_segments

    work = Path(tempfile.mkdtemp(prefix="tempo-needle-"))
    rng = np.random.default_rng(args.seed)
    needles = plan_needles(args.needles, args.duration, rng)
    video = work / "haystack.mp4"
    size = tuple(int(v) for v in args.size.lower().split("x"))
    t0 = time.perf_counter()
    write_needle_video(video, args.duration, needles, fps=args.fps, size=size,  # type: ignore[arg-type]
                       background=Path(args.background) if args.background else None)
    print(f"video: {args.duration:.0f} s, {len(needles)} needles, written in {time.perf_counter() - t0:.1f} s")
    for i, nd in enumerate(needles):
        print(f"  needle {i}: {nd.kind:5s} {nd.value or '':7s} at {nd.start:.1f}–{nd.end:.1f} s (answer {nd.answer})")

    tiny = args.real_model is None
    model_dir = str(write_tiny_checkpoint(work / "tiny")) if tiny else args.real_model
    config = TempoInferenceConfig()
    ask = AskSettings(budget=args.budget, max_new_tokens=args.max_new_tokens)
    rows: list[Row] = []

    # Reference mode: what `tempo ask VIDEO QUESTION` runs.
    model = TempoModel.load(model_dir, config=config)
    sampling = SamplingConfig(fps=config.fps, window=config.window, max_edge=config.max_edge, sampling="release")
    t0 = time.perf_counter()
    for i, nd in enumerate(needles):
        with iter_segments(str(video), config=sampling) as segments:
            result = answer_video(model, segments, nd.question, settings=ask)
        starts = np.array([s["start"] for s in result["segments"]])
        ends = np.array([s["end"] for s in result["segments"]])
        counts = np.array([s["tokens"] for s in result["segments"]])
        _, share = _needle_share(starts, ends, counts, nd)
        rows.append(Row(i, "reference", 1.0, share, extract_choice(result["answer"]) == nd.answer,
                        _time_error(result["answer"], nd)))
    print(f"reference: {len(needles)} questions in {time.perf_counter() - t0:.1f} s")

    # Memory: one ingest, then the same questions at each K.
    proc = None
    redis_url = args.redis_url
    if redis_url is None:
        (work / "redis").mkdir()
        proc, redis_url = spawn_redis_server(work / "redis", appendonly=False)
    try:
        service = TempoService(model=model_dir, embedder=args.embedder, redis_url=redis_url, home=work / "home",
                               inference=config)
        t0 = time.perf_counter()
        service.ingest(str(video), "haystack", progress=False)
        print(f"ingest: {time.perf_counter() - t0:.1f} s")
        conversations = Conversations(service)
        for k in args.ks:
            t0 = time.perf_counter()
            settings = dataclasses.replace(ask, top_k=k)
            for i, nd in enumerate(needles):
                result = conversations.ask_once("haystack", nd.question, settings=settings)
                timeline = result["segments"]
                hit, share = _needle_share(
                    np.array([r["start"] for r in timeline]),
                    np.array([r["end"] for r in timeline]),
                    np.array([r["tokens"] for r in timeline]),
                    nd,
                )
                recall = float(bool((hit & np.array([r["kind"] == "candidate" for r in timeline])).any()))
                rows.append(Row(i, f"memory K={k}", recall, share, extract_choice(result["answer"]) == nd.answer,
                                _time_error(result["answer"], nd)))
            print(f"memory K={k}: {len(needles)} questions in {time.perf_counter() - t0:.1f} s")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)

    print()
    if tiny:
        print("NOTE: tiny random checkpoint — every stage ran, but these numbers are NOT meaningful "
              "(answers are noise). Run with --real-model for the released weights.\n")
    print("| needle | kind | mode | recall | budget share % | correct | time err s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        nd = needles[r.needle]
        err = "-" if r.time_error is None else f"{r.time_error:.1f}"
        print(f"| {r.needle} | {nd.kind} | {r.mode} | {r.recall:.0f} | {r.share:.1f} | {'yes' if r.correct else 'no'} "
              f"| {err} |")
    print("\n| mode | recall | mean budget share % | accuracy % |\n|---|---|---|---|")
    for mode in dict.fromkeys(r.mode for r in rows):
        sel = [r for r in rows if r.mode == mode]
        print(f"| {mode} | {np.mean([r.recall for r in sel]):.2f} | {np.mean([r.share for r in sel]):.1f} | "
              f"{100 * np.mean([r.correct for r in sel]):.0f} |")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nfiles kept in {work}")
    return 0


def _ks(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("give positive integers, e.g. 4,8,16")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="video length in seconds (default 3600)")
    parser.add_argument("--needles", type=int, default=6, help="needles inserted (default 6)")
    parser.add_argument("--ks", type=_ks, default=[4, 8, 16], help="memory-mode top-K values (default 4,8,16)")
    parser.add_argument("--budget", type=int, default=8192, help="visual token budget (default 8192)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="answer length (default 32)")
    parser.add_argument("--fps", type=float, default=8.0, help="frame rate of the generated video (default 8)")
    parser.add_argument("--size", default="320x180", help="WxH of the generated video (default 320x180)")
    parser.add_argument("--background", default=None, help="your own video as the haystack (looped)")
    parser.add_argument("--real-model", default=None, metavar="DIR",
                        help="a real checkpoint (the released Tempo-6B); default: a tiny random one")
    parser.add_argument("--embedder", default=None, help="SigLIP directory (default: beside the checkpoint)")
    parser.add_argument("--redis-url", default=None, help="default: a private redis-server in a temp dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the generated video and model")
    args = parser.parse_args()
    if args.needles < 1 or not args.duration >= 4 * SEGMENT_SECONDS * args.needles / 3:
        parser.error("need at least one needle and a few segments per needle")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
