"""Ingest speed: our decode + sample + segment path against FFmpeg's own 2 fps sampling.

    python bench/ingest.py [VIDEO] [--runs 5] [--fps 2] [--max-edge 512] [--workers N] [--json]

Without VIDEO, a 5-minute, 720p, 30 fps H.264 file with B-frames (and moving detail, so decoding does
real work) is written to a temporary folder first (`--duration` to change it). The two paths run
alternately, `--runs` times each, so a busy machine slows both alike; we print both medians, their
ratio (FFmpeg time / ours: above 1 means we are faster) and our speed as × realtime. The FFmpeg
command is the reference the issue names: `ffmpeg -threads 0 -i VIDEO -vf fps=2,scale=W:H -f null -`
at our output size, with Debian's ffmpeg (`make bench-deps` installs it) or else the imageio-ffmpeg
wheel's static build.
Ours is the product's path, pixels bit-equal to the release's resize (PIL bicubic from full-size
RGB), with the resize on `--workers` threads overlapping decoding (default: SamplingConfig's).
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

from tempo.streaming import SamplingConfig, iter_segments, probe_source, target_size
from tempo.streaming.synthetic import write_test_video


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


def run_ours(video: str, config: SamplingConfig) -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads) of a full decode + sample + segment pass, and frames kept."""
    started, cpu = time.perf_counter(), time.process_time()
    frames = 0
    for segment in iter_segments(video, config=config):
        frames += segment.num_frames
    return time.perf_counter() - started, time.process_time() - cpu, frames


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
    parser.add_argument("--threads", type=int, default=None, help="decoder threads (default: SamplingConfig's)")
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
        assert info.width and info.height
        size = target_size(info.width, info.height, config.max_edge)
        ffmpeg = ffmpeg_binary()
        ours, theirs, ours_cpu, theirs_cpu, frames = [], [], [], [], 0
        for _ in range(args.runs):
            wall, cpu, frames = run_ours(video, config)
            ours.append(wall)
            ours_cpu.append(cpu)
            wall, cpu = run_ffmpeg(ffmpeg, video, args.fps, size)
            theirs.append(wall)
            theirs_cpu.append(cpu)
        ours_median, ffmpeg_median = statistics.median(ours), statistics.median(theirs)
        # On a shared machine each pair of neighbouring runs sees the same load: the median of the
        # per-pair ratios is steadier than the ratio of medians; CPU seconds are steadier still.
        paired = statistics.median(t / o for o, t in zip(ours, theirs, strict=True))
        cpu_ratio = statistics.median(theirs_cpu) / statistics.median(ours_cpu)
        duration = info.duration or 0.0
        result = {
            "video": video if args.video else f"generated {args.duration:g} s 720p30 H.264 (bframes=3)",
            "source": info.to_dict(),
            "output_size": list(size),
            "sampled_frames": frames,
            "runs": args.runs,
            "ours_s": [round(x, 4) for x in ours],
            "ffmpeg_s": [round(x, 4) for x in theirs],
            "ours_median_s": round(ours_median, 4),
            "ffmpeg_median_s": round(ffmpeg_median, 4),
            "speedup_vs_ffmpeg": round(ffmpeg_median / ours_median, 3),
            "speedup_paired_median": round(paired, 3),
            "ours_cpu_median_s": round(statistics.median(ours_cpu), 4),
            "ffmpeg_cpu_median_s": round(statistics.median(theirs_cpu), 4),
            "cpu_ratio": round(cpu_ratio, 3),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "ours_x_realtime": round(duration / ours_median, 1) if duration else None,
            "ffmpeg": ffmpeg,
            "cores": os.cpu_count(),
            "convert_workers": config.convert_workers,
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"source        {info.width}x{info.height} {info.codec}, {duration:.1f} s -> "
              f"{size[0]}x{size[1]} at {args.fps:g} fps ({frames} frames)")
        print(f"ours          median {ours_median:.3f} s  ({result['ours_x_realtime']}× realtime)")
        print(f"ffmpeg        median {ffmpeg_median:.3f} s  (-threads 0 -vf fps,scale -f null)")
        print(f"speedup       {result['speedup_vs_ffmpeg']:.2f}× faster than ffmpeg (target ≥ 1.5×); "
              f"median of paired runs {paired:.2f}×")
        print(f"cpu time      ours {result['ours_cpu_median_s']:.3f} s, ffmpeg {result['ffmpeg_cpu_median_s']:.3f} s "
              f"({cpu_ratio:.2f}× less); load average {result['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
