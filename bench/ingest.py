"""Ingest speed: our decode + sample + segment path against FFmpeg's own 2 fps sampling.

    python bench/ingest.py [VIDEO] [--runs 5] [--fps 2] [--max-edge 512] [--workers N] [--decoders N] [--json]

Without VIDEO, a 5-minute, 720p, 30 fps H.264 file with B-frames (and moving detail, so decoding does
real work) is written to a temporary folder first (`--duration` to change it). Five things run
alternately, `--runs` times each, so a busy machine slows all alike:

- ours: the product's path, pixels bit-equal to the release's resize (PIL bicubic from full-size
  RGB), computed by the compiled kernel of streaming/resize.py; the file's GOPs are decoded side by
  side by several decoders (streaming/parallel_decode.py, `--decoders`, default one per
  core), each converting the frames it decodes that a slot takes;
- ours, frame-threaded: the same with one frame-threaded decoder (`file_decoders=1`, the path
  before GOP-parallel decoding; sampled frames converted on `--workers` threads beside decoding);
- ours with PIL: the same path with PIL itself resizing (the kernel switched off), the old speed;
- ffmpeg: the reference the issue names, `ffmpeg -threads 0 -i VIDEO -vf fps=2,scale=W:H -f null -`
  at our output size, with Debian's ffmpeg (`make bench-deps` installs it) or else the imageio-ffmpeg
  wheel's static build;
- decode only, frame-threaded: the frame-threaded path's demuxing and decoding (threads, exact
  frame skipping) and nothing else, the floor under that path: no resize, however fast, goes below it.

We print each median, the ratios (FFmpeg time / ours: above 1 means we are faster), CPU seconds
(steadier than wall time on a shared machine), the frames each path decoded and the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
from tempo.streaming import SamplingConfig, iter_segments, probe_source, resize, target_size
from tempo.streaming.convert import FrameConverter
from tempo.streaming.decode import IngestStats, configure_decoder, decoded_frames, max_keyframe_spacing
from tempo.streaming.parallel_decode import default_file_decoders
from tempo.streaming.segment import SourceInfo
from tempo.streaming.synthetic import write_test_video

PATHS = ("ours", "ours_threaded", "ours_pil", "ffmpeg", "decode_only")
RUN_DECODED: dict[str, int] = {}  # frames the decoder output in the latest run of each path
LABELS = {"ours": "ours", "ours_threaded": "ours, frame-threaded", "ours_pil": "ours, PIL", "ffmpeg": "ffmpeg",
          "decode_only": "decode only, frame-threaded"}


def ffmpeg_binary() -> str:
    """Debian's ffmpeg (/usr/bin), else ffmpeg from PATH, else the imageio-ffmpeg wheel's static build."""
    for found in ("/usr/bin/ffmpeg", shutil.which("ffmpeg")):
        if found and os.access(found, os.X_OK):
            return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_default_video(folder: Path, duration: float = 300.0) -> Path:
    path = folder / "bench_720p30_h264_bframes.mp4"
    print(f"writing a {duration:g} s 720p 30 fps H.264 test video with B-frames to {path}", file=sys.stderr)
    return write_test_video(path, duration=duration, fps=30.0, size=(1280, 720), bframes=3, keyint=250,
                            texture=True, preset="superfast")


def run_ours(video: str, config: SamplingConfig, *, kernel: bool = True,
             name: str = "ours") -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads) of a full decode + sample + segment pass, and frames kept;
    with `kernel` False, PIL resizes (the compiled kernel switched off for this run)."""
    saved = resize._kernel
    if not kernel:
        resize._kernel = lambda: None  # type: ignore[assignment]
    try:
        started, cpu = time.perf_counter(), time.process_time()
        frames = 0
        stream = iter_segments(video, config=config)
        for segment in stream:
            frames += segment.num_frames
        RUN_DECODED[name] = stream.stats.frames_decoded
        return time.perf_counter() - started, time.process_time() - cpu, frames
    finally:
        resize._kernel = saved  # type: ignore[assignment]


def run_decode_only(video: str, config: SamplingConfig, info: SourceInfo) -> tuple[float, float, int]:
    """Wall and CPU seconds of demuxing and decoding alone, with our decoder settings (threads, the
    exact frame skipping on the file's slot grid); frames decoded."""
    started, cpu = time.perf_counter(), time.process_time()
    stats = IngestStats()
    with av.open(video) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, config, stats, keyframe_spacing=max_keyframe_spacing(stream, info.duration))
        grid = (info.start_time or 0.0, config.fps)
        for _ in decoded_frames(container, stream, config, stats, source=video, grid=grid):
            pass
    return time.perf_counter() - started, time.process_time() - cpu, stats.frames_decoded


def run_ffmpeg(ffmpeg: str, video: str, fps: float, size: tuple[int, int]) -> tuple[float, float]:
    """Wall and CPU seconds of the reference command."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-threads", "0", "-i", video,
               "-vf", f"fps={fps:g},scale={size[0]}:{size[1]}", "-f", "null", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", nargs="?", help="video file (default: write a 5-min 720p30 H.264 test file)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each path (alternating)")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--max-edge", type=int, default=512)
    parser.add_argument("--duration", type=float, default=300.0, help="length of the generated video (s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads resizing sampled frames beside decoding (0: in the reading thread)")
    parser.add_argument("--threads", type=int, default=None, help="frame threads of the frame-threaded decoder")
    parser.add_argument("--decoders", type=int, default=None,
                        help="GOP-parallel decoders of ours (default: one per core; 1: frame-threaded)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tempo-bench-") as tmp:
        video = args.video or str(write_default_video(Path(tmp), args.duration))
        info = probe_source(video)
        config = SamplingConfig(fps=args.fps, max_edge=args.max_edge)
        if args.threads is not None:
            config = dataclasses.replace(config, decoder_threads=args.threads)
        if args.workers is not None:
            config = dataclasses.replace(config, convert_workers=args.workers)
        if args.decoders is not None:
            config = dataclasses.replace(config, file_decoders=args.decoders)
        threaded = dataclasses.replace(config, file_decoders=1)
        assert info.width and info.height
        size = target_size(info.width, info.height, config.max_edge)
        ffmpeg = ffmpeg_binary()
        with av.open(video) as container:  # compile (or load) the resize kernel before timing
            FrameConverter(size)(next(container.decode(video=0)))
        walls: dict[str, list[float]] = {name: [] for name in PATHS}
        cpus: dict[str, list[float]] = {name: [] for name in PATHS}
        frames = 0
        for _ in range(args.runs):
            for name in PATHS:
                if name == "ours":
                    wall, cpu, frames = run_ours(video, config)
                elif name == "ours_threaded":
                    wall, cpu, frames = run_ours(video, threaded, name=name)
                elif name == "ours_pil":
                    wall, cpu, frames = run_ours(video, config, kernel=False, name=name)
                elif name == "ffmpeg":
                    wall, cpu = run_ffmpeg(ffmpeg, video, args.fps, size)
                else:
                    wall, cpu, RUN_DECODED[name] = run_decode_only(video, threaded, info)
                walls[name].append(wall)
                cpus[name].append(cpu)
        wall_med = {name: statistics.median(v) for name, v in walls.items()}
        cpu_med = {name: statistics.median(v) for name, v in cpus.items()}
        # On a shared machine each group of neighbouring runs sees the same load: the median of the
        # per-run ratios is steadier than the ratio of medians; CPU seconds are steadier still.
        paired = {name: statistics.median(t / o for o, t in zip(walls[name], walls["ffmpeg"], strict=True))
                  for name in PATHS}
        duration = info.duration or 0.0
        result = {
            "video": video if args.video else f"generated {args.duration:g} s 720p30 H.264 (bframes=3)",
            "source": info.to_dict(),
            "output_size": list(size),
            "sampled_frames": frames,
            "decoded_frames": {name: RUN_DECODED.get(name) for name in PATHS if name != "ffmpeg"},
            "runs": args.runs,
            "wall_s": {name: [round(x, 4) for x in v] for name, v in walls.items()},
            "wall_median_s": {name: round(v, 4) for name, v in wall_med.items()},
            "cpu_median_s": {name: round(v, 4) for name, v in cpu_med.items()},
            "speedup_vs_ffmpeg": {name: round(wall_med["ffmpeg"] / wall_med[name], 3) for name in PATHS},
            "speedup_paired_median": {name: round(v, 3) for name, v in paired.items()},
            "cpu_ratio_vs_ffmpeg": {name: round(cpu_med["ffmpeg"] / cpu_med[name], 3) for name in PATHS},
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "ours_x_realtime": round(duration / wall_med["ours"], 1) if duration else None,
            "ffmpeg": ffmpeg,
            "cores": os.cpu_count(),
            "convert_workers": config.convert_workers,
            "file_decoders": config.file_decoders or default_file_decoders(),
            "resize_kernel": "numba" if resize.compiled() else "PIL (numba missing)",
        }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"source  {info.width}x{info.height} {info.codec}, {duration:.1f} s -> "
          f"{size[0]}x{size[1]} at {args.fps:g} fps ({frames} frames sampled)")
    print(f"{'':28}{'wall median':>12}{'cpu median':>12}{'ffmpeg/ours':>13}{'paired':>8}{'cpu ratio':>11}"
          f"{'decoded':>9}")
    for name in PATHS:
        print(f"{LABELS[name]:28}{wall_med[name]:11.3f}s{cpu_med[name]:11.3f}s"
              f"{result['speedup_vs_ffmpeg'][name]:12.2f}×{paired[name]:7.2f}×"
              f"{result['cpu_ratio_vs_ffmpeg'][name]:10.2f}×{RUN_DECODED.get(name, '-'):>9}")
    print(f"target  ours ≥ 1.5× ffmpeg; {result['file_decoders']} GOP-parallel decoders; resize "
          f"{result['resize_kernel']}; {os.cpu_count()} cores; load average {result['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
