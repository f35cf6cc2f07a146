"""Video-MME "with subtitles" (lmms-eval 0.7.3's `videomme_w_subtitle` task), for `tempo eval videomme --subtitles`.

What the task does (lmms_eval/tasks/videomme/utils.py, `videomme_doc_to_text_subtitle`, default kwargs
frame_num 32), written out here:
  * the subtitle file is `subtitle/<videoID>.srt` under the benchmark directory (public download);
  * cue times become frame numbers with the video's frame rate (int(seconds · fps)); 32 frame indices
    are sampled uniformly (linspace over the video's frame count, as ints); a cue is kept when one of
    those frames lies in [start frame, end frame); its text is what stands inside
    `<font color="white" size=".72c">…</font>` (cues without it are dropped);
  * the prompt: "This video's subtitles are listed below: \\n" + the kept texts joined by new lines
    (or "No subtitles available" without a file) + "\\n" + the preamble + "\\n" + question + "\\n" +
    options + "\\n" + "The best answer is:".
One deviation: lmms-eval orders kept cues by iterating a Python set of their indices; here they are in
index (time) order, which is what that set gives for the small integers involved in CPython.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SUBTITLES_PREAMBLE = "This video's subtitles are listed below: \n"
NO_SUBTITLES = "No subtitles available"
FRAME_NUM = 32  # videomme_w_subtitle.yaml: lmms_eval_specific_kwargs.default.frame_num
SUBTITLE_KEY = "subtitles"  # where the loaded text rides in a question's doc
_FONT = re.compile(r'<font color="white" size=".72c">(.*?)</font>')


def _seconds(text: str) -> float:
    h, m, s_ms = text.strip().split(":")
    s, ms = s_ms.split(",")
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def read_srt_sections(path: Path) -> list[tuple[float, float, str]]:
    """(start s, end s, raw text) per block of at least three lines, as lmms-eval's load_subtitles
    reads them (a later block with the same times replaces an earlier one)."""
    found: dict[tuple[float, float], str] = {}
    for section in path.read_text(encoding="utf-8").split("\n\n"):
        if section.strip():
            lines = section.split("\n")
            if len(lines) >= 3:
                start, end = lines[1].split(" --> ")
                found[(_seconds(start), _seconds(end))] = " ".join(lines[2:])
    return [(a, b, t) for (a, b), t in found.items()]


def video_frames(video: Path) -> tuple[float, int]:
    """(frames per second, frame count) of a video's first stream, as OpenCV reports them."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        frames = int(stream.frames or 0)
        if frames <= 0 and stream.duration is not None:
            frames = int(float(stream.duration * stream.time_base) * fps)
    return fps, frames


def subtitle_text(srt: Path, video: Path, frame_num: int = FRAME_NUM) -> str:
    """The subtitles lmms-eval puts in the prompt for this video (see the module docstring)."""
    if not srt.is_file():
        return NO_SUBTITLES
    fps, total = video_frames(video)
    cues = [(int(a * fps), int(b * fps), t) for a, b, t in read_srt_sections(srt)]
    count = total if frame_num == -1 else frame_num
    sampled = np.linspace(0, total - 1, count, dtype=int).tolist()
    kept = sorted({i for f in sampled for i, (a, b, _) in enumerate(cues) if a <= f < b})
    texts = [m[0] for m in (_FONT.findall(cues[i][2]) for i in kept) if m]
    return "\n".join(texts)


def videomme_subtitle_prompt(doc: Mapping[str, Any], preamble: str) -> str:
    """The `videomme_w_subtitle` text of a question whose doc carries its subtitle text."""
    options = "\n".join(str(option) for option in doc["options"])
    return (f"{SUBTITLES_PREAMBLE}{doc[SUBTITLE_KEY]}\n{preamble}\n{doc['question']}\n{options}\n"
            "The best answer is:")


def with_subtitles(doc: Mapping[str, Any], root: Path, video: Path) -> dict[str, Any]:
    """`doc` with its subtitle text loaded from `root/subtitle/<videoID>.srt`."""
    return {**doc, SUBTITLE_KEY: subtitle_text(root / "subtitle" / f"{doc['videoID']}.srt", video)}
