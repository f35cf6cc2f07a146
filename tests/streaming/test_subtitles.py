"""Subtitle files and container subtitle streams read into cues (real files written by the tests)."""

from __future__ import annotations

import pytest
from tempo.memory.text_index import rrf_fuse
from tempo.streaming.subtitles import (
    Cue,
    CueTrack,
    SubtitleError,
    container_cues,
    load_text_track,
    parse_cues,
    read_subtitle_file,
)
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import write_srt, write_subtitled_video, write_vtt

CUES = [(1.0, 2.5, "hello there"), (9.25, 11.0, "the blue elephant"), (20.0, 21.0, "goodbye")]


@pytest.mark.parametrize(("suffix", "codec"), [("mp4", "mov_text"), ("mkv", "subrip"), ("mkv", "ass"),
                                               ("mkv", "webvtt")])
def test_container_subtitle_streams_are_decoded_with_their_own_times_and_language(tmp_path, suffix, codec) -> None:
    video = write_subtitled_video(tmp_path / f"v.{suffix}", CUES, duration=12.0, codec=codec, language="fra")
    track = container_cues(str(video))
    assert [(c.start, c.end, c.text, c.language) for c in track.cues] == [(a, b, t, "fra") for a, b, t in CUES]
    assert all(c.source.startswith("container:") for c in track.cues)
    assert track.problems == []


def test_srt_and_vtt_sidecars_give_the_same_cues(tmp_path) -> None:
    srt = read_subtitle_file(write_srt(tmp_path / "movie.de.srt", CUES))
    vtt = read_subtitle_file(write_vtt(tmp_path / "movie.vtt", CUES))
    assert [(c.start, c.end, c.text) for c in srt.cues] == CUES
    assert [(c.start, c.end, c.text) for c in vtt.cues] == CUES
    assert {c.language for c in srt.cues} == {"de"} and {c.language for c in vtt.cues} == {None}


def test_a_sidecar_beside_the_video_is_found(tmp_path) -> None:
    video = write_test_video(tmp_path / "clip.mp4", duration=2.0, fps=10)
    write_srt(tmp_path / "clip.srt", CUES)
    assert [c.text for c in load_text_track(str(video)).cues] == [t for _, _, t in CUES]
    assert load_text_track(str(video), sidecar=False).cues == []


def test_broken_timing_lines_are_reported_with_their_line_number_and_skipped() -> None:
    text = ("1\n00:00:01,000 --> 00:00:02,000\nfine\n\n"
            "2\n00:00:03,000 -> 00:00:04,000\nbroken arrow\n\n"
            "3\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n"
            "4\n00:00:06,000 --> 00:00:07,500\n<i>also fine</i>\n")
    track = parse_cues(text, kind="srt", name="x.srt")
    assert [(c.start, c.end, c.text) for c in track.cues] == [(1.0, 2.0, "fine"), (6.0, 7.5, "also fine")]
    assert len(track.problems) == 2
    assert track.problems[0].startswith("x.srt line 5: no timing line")
    assert track.problems[1].startswith("x.srt line 10: the cue ends (4.000 s) before it starts (5.000 s)")


def test_a_subtitle_file_without_any_valid_cue_is_refused_in_one_sentence(tmp_path) -> None:
    bad = tmp_path / "bad.srt"
    bad.write_text("1\n00:00:xx,000 --> 00:00:02,000\nnope\n")
    with pytest.raises(SubtitleError) as err:
        read_subtitle_file(bad)
    message = str(err.value)
    assert message.startswith(f"subtitle file {str(bad)!r} holds no valid cue (1 malformed, first: bad.srt line 2:")
    assert "\n" not in message
    for path, why in [(tmp_path / "none.srt", "does not exist"), (tmp_path / "x.txt", "is not a subtitle file")]:
        with pytest.raises(SubtitleError, match=why):
            read_subtitle_file(path)
    (tmp_path / "bin.srt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SubtitleError, match="is not UTF-8 text"):
        read_subtitle_file(tmp_path / "bin.srt")
    (tmp_path / "novtt.vtt").write_text("00:00:01.000 --> 00:00:02.000\nhi\n")
    with pytest.raises(SubtitleError, match="is not a WebVTT file"):
        read_subtitle_file(tmp_path / "novtt.vtt")


def test_a_subtitle_stream_with_no_cues_and_a_video_without_subtitles_give_no_cues(tmp_path) -> None:
    empty = write_subtitled_video(tmp_path / "empty.mkv", [], duration=2.0, codec="subrip")
    plain = write_test_video(tmp_path / "plain.mp4", duration=2.0, fps=10)
    assert container_cues(str(empty)).cues == [] and container_cues(str(plain)).cues == []


def test_overlapping_finds_every_cue_that_overlaps_a_segment() -> None:
    track = CueTrack([Cue(0.0, 30.0, "long", "srt"), Cue(5.0, 6.0, "short", "srt"), Cue(8.0, 9.0, "edge", "srt")])
    assert [c.text for c in track.overlapping(4.0, 8.0)] == ["long", "short"]  # [start, end): 8.0 is out
    assert [c.text for c in track.overlapping(29.0, 40.0)] == ["long"]
    assert track.overlapping(30.0, 31.0) == []


def test_reciprocal_rank_fusion_rewards_agreement_and_keeps_the_union() -> None:
    fused = rrf_fuse([[1, 2, 3], [3, 4]])
    assert [i for i, _ in fused] == [3, 1, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 63 + 1 / 61)
