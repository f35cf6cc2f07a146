"""`tempo eval videomme --subtitles`: lmms-eval 0.7.3's videomme_w_subtitle prompt, from the public layout."""

from __future__ import annotations

from tempo.eval.prompts import VIDEOMME_PREAMBLE, videomme_prompt
from tempo.eval.subtitles import NO_SUBTITLES, subtitle_text, with_subtitles
from tempo.streaming.synthetic import write_test_video

FONT = '<font color="white" size=".72c">{}</font>'
DOC = {"videoID": "abc", "question": "What animal is named?", "options": ["A. cat", "B. elephant", "C. dog", "D. owl"]}


def _srt(path, cues) -> None:
    blocks = [f"{n}\n00:00:{a:02d},000 --> 00:00:{b:02d},000\n{t}" for n, (a, b, t) in enumerate(cues, 1)]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def test_the_prompt_is_lmms_evals_videomme_w_subtitle(tmp_path) -> None:
    (tmp_path / "subtitle").mkdir()
    video = write_test_video(tmp_path / "abc.mp4", duration=40.0, fps=10)  # 400 frames
    # 32 frames sampled over 0..399: every ~12.9 frames (1.29 s); a cue of 0.5 s between samples is missed.
    _srt(tmp_path / "subtitle" / "abc.srt", [(2, 4, FONT.format("a blue elephant")), (10, 12, "no font tag"),
                                             (20, 22, FONT.format("goodbye"))])
    doc = with_subtitles(DOC, tmp_path, video)
    assert doc["subtitles"] == "a blue elephant\ngoodbye"
    assert videomme_prompt(doc) == (
        "This video's subtitles are listed below: \na blue elephant\ngoodbye\n" + VIDEOMME_PREAMBLE
        + "\nWhat animal is named?\nA. cat\nB. elephant\nC. dog\nD. owl\nThe best answer is:"
    )


def test_a_video_without_subtitle_file_says_so_and_the_plain_prompt_is_unchanged(tmp_path) -> None:
    video = write_test_video(tmp_path / "abc.mp4", duration=4.0, fps=10)
    assert subtitle_text(tmp_path / "subtitle" / "abc.srt", video) == NO_SUBTITLES
    assert videomme_prompt(with_subtitles(DOC, tmp_path, video)).startswith(
        "This video's subtitles are listed below: \nNo subtitles available\n")
    assert videomme_prompt(DOC).startswith(VIDEOMME_PREAMBLE)  # without --subtitles: as before
