"""WebVTT subtitles of HLS (streaming/hls_subtitles.py): hand-written playlists and .vtt segments beside
a real HLS video that PyAV writes, read at the video's stream times; and what FFmpeg itself gives."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from tempo.streaming import iter_segments
from tempo.streaming.hls_subtitles import hls_webvtt_cues, timestamp_offset
from tempo.streaming.subtitles import SubtitleError, container_cues, load_text_track
from tempo.streaming.synthetic import read_frame_time, write_test_video

# (LOCAL start, LOCAL end, text) per 4-s subtitle segment; the third cue spans the boundary and is
# repeated in both segments, as packagers do.
SEGMENTS = [[(1.0, 2.5, "the blue elephant"), (3.5, 4.5, "crosses the road")],
            [(3.5, 4.5, "crosses the road"), (5.0, 6.5, "a red kite")]]


def _vtt(cues: list[tuple[float, float, str]], mpegts: int | None, local: str = "00:00:00.000") -> str:
    def clock(t: float) -> str:
        return f"00:{int(t // 60):02d}:{t % 60:06.3f}"

    header = "WEBVTT" + (f"\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:{local}" if mpegts is not None else "")
    return header + "\n\n" + "".join(f"{clock(a)} --> {clock(b)}\n{t}\n\n" for a, b, t in cues)


def _hls(root: Path, *, mpegts: int | None = None, local: str = "00:00:00.000") -> tuple[Path, int]:
    """A master playlist: an HLS video (PyAV, 4-s MPEG-TS segments, timestamps from 10 s as packagers
    start them) and a WebVTT subtitles rendition of two segments mapped onto the video's clock."""
    root.mkdir(parents=True, exist_ok=True)
    write_test_video(root / "video.m3u8", duration=8.0, fps=10, start_pts_offset=10.0,
                     muxer_options={"hls_time": "4"})
    first = sorted(root.glob("video*.ts"))[0]
    with av.open(str(first)) as c:
        video_start = int(c.streams.video[0].start_time)  # 90 kHz ticks of the first frame
    for k, cues in enumerate(SEGMENTS):
        (root / f"subs{k}.vtt").write_text(_vtt(cues, video_start if mpegts is None else mpegts, local))
    (root / "subs.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
                                    "#EXTINF:4.0,\nsubs0.vtt\n#EXTINF:4.0,\nsubs1.vtt\n#EXT-X-ENDLIST\n")
    (root / "master.m3u8").write_text(
        '#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,'
        'AUTOSELECT=YES,URI="subs.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=500000,SUBTITLES="subs"\nvideo.m3u8\n')
    return root / "master.m3u8", video_start


@pytest.fixture(scope="module")
def hls(tmp_path_factory) -> tuple[Path, int]:
    return _hls(tmp_path_factory.mktemp("hls"))


def test_ffmpeg_lists_the_webvtt_rendition_but_delivers_no_cue_from_it(hls) -> None:
    # Why Tempo reads the rendition itself: FFmpeg's HLS demuxer (libavformat 62) shows the stream,
    # then gives no packet with words. If a later FFmpeg delivers them, this test says so.
    master, _ = hls
    with av.open(str(master)) as c:
        assert [(s.codec_context.name, s.metadata.get("language")) for s in c.streams.subtitles] == [("webvtt", "en")]
    assert container_cues(str(master)).cues == []
    # The media playlist alone: cues, but at LOCAL times (the map to the 10-s MPEG-TS clock ignored)
    # (FFmpeg drops the repeated boundary cue itself).
    alone = container_cues(str(master.parent / "subs.m3u8")).cues
    assert [c.start for c in alone] == [1.0, 3.5, 5.0]


def test_ffmpeg_reads_a_segment_without_a_final_blank_line_into_the_next_header(tmp_path) -> None:
    master, _ = _hls(tmp_path / "h")
    first = master.parent / "subs0.vtt"
    first.write_text(first.read_text().rstrip("\n") + "\n")  # legal WebVTT: no blank line after the last cue
    alone = container_cues(str(master.parent / "subs.m3u8")).cues
    assert "X-TIMESTAMP-MAP" in alone[1].text  # the next segment's header inside a cue's words
    assert [c.text for c in load_text_track(str(master)).cues] == ["the blue elephant", "crosses the road",
                                                                    "a red kite"]


def test_cues_come_at_the_video_stream_times_once_each_with_the_rendition_language(hls) -> None:
    master, video_start = hls
    assert video_start == 900000  # the video's first frame at 10 s of the MPEG-TS clock: stream time 0
    track = load_text_track(str(master))
    assert track.problems == []
    assert [(round(c.start, 6), round(c.end, 6), c.text, c.language) for c in track.cues] == [
        (1.0, 2.5, "the blue elephant", "en"), (3.5, 4.5, "crosses the road", "en"), (5.0, 6.5, "a red kite", "en")]
    assert all(c.source == "container:webvtt" for c in track.cues)


def test_each_cue_lands_on_the_frames_shown_while_it_is_said(hls) -> None:
    # The frames show their own time since the first frame (the cue's LOCAL clock): at a cue's stream
    # time the decoded frame must show the cue's LOCAL start.
    master, _ = hls
    track = load_text_track(str(master))
    frames = [(t, f) for seg in iter_segments(str(master)) for t, f in zip(seg.timestamps, seg.frames, strict=True)]
    for cue, local in zip(track.cues, [1.0, 3.5, 5.0], strict=True):
        t, frame = min(frames, key=lambda tf: abs(tf[0] - cue.start))
        assert abs(t - cue.start) <= 0.25
        assert read_frame_time(frame) == pytest.approx(local, abs=0.15)


def test_a_map_onto_another_clock_moves_the_cues_by_the_difference(tmp_path) -> None:
    # LOCAL 2.5 s at MPEGTS 10 s: a cue at LOCAL 3.5 s is at 11.0 s of the clock, 1.0 s of the stream.
    master, _ = _hls(tmp_path / "h", mpegts=900000, local="00:00:02.500")
    assert [c.start for c in load_text_track(str(master)).cues] == [-1.5, 1.0, 2.5]


def test_the_timestamp_map_shifts_local_times_onto_the_mpegts_clock() -> None:
    assert timestamp_offset("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n") == 10.0
    assert timestamp_offset("WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:02.500,MPEGTS:900000\n\n") == 7.5
    assert timestamp_offset("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n") == 0.0
    with pytest.raises(SubtitleError, match="is not 'MPEGTS"):
        timestamp_offset("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:soon,LOCAL:00:00:00.000\n\n")


def test_a_broken_or_missing_segment_is_reported_and_the_others_kept(tmp_path) -> None:
    master, _ = _hls(tmp_path / "h")
    (master.parent / "subs0.vtt").write_text("WEBVTT\n\n00:00:01.000 => 00:00:02.000\nbroken\n\n"
                                             "00:00:02.000 --> 00:00:03.000\nkept\n")
    (master.parent / "subs1.vtt").unlink()
    track = hls_webvtt_cues(str(master))
    assert track is not None and [c.text for c in track.cues] == ["kept"]
    assert track.problems[0].startswith("subs0.vtt line 3: no timing line")
    assert track.problems[1].startswith("subtitle segment subs1.vtt:") and "could not be read" in track.problems[1]


def test_a_local_playlist_naming_a_url_is_not_followed(tmp_path) -> None:
    master, _ = _hls(tmp_path / "h")
    (master.parent / "subs.m3u8").write_text("#EXTM3U\n#EXTINF:4.0,\nhttp://169.254.169.254/latest.vtt\n")
    track = hls_webvtt_cues(str(master))
    assert track is not None and track.cues == [] and "names a URL" in track.problems[0]


def test_a_playlist_without_webvtt_subtitles_is_left_to_the_container_reader(tmp_path) -> None:
    write_test_video(tmp_path / "plain.m3u8", duration=2.0, fps=10)
    assert hls_webvtt_cues(str(tmp_path / "plain.m3u8")) is None
    assert load_text_track(str(tmp_path / "plain.m3u8")).cues == []


@pytest.fixture()
def served(tmp_path):
    """The HLS directory over HTTP on loopback (a real server, as a CDN would serve it)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    master, _ = _hls(tmp_path / "h")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(master.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield master.parent, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_remote_playlist_is_read_from_its_own_host_only(served) -> None:
    root, base = served
    track = load_text_track(f"{base}/master.m3u8")
    assert [(round(c.start, 6), c.text) for c in track.cues] == [
        (1.0, "the blue elephant"), (3.5, "crosses the road"), (5.0, "a red kite")]
    (root / "subs.m3u8").write_text("#EXTM3U\n#EXTINF:4.0,\nsubs0.vtt\n#EXTINF:4.0,\nhttp://127.0.0.2:9/x.vtt\n")
    other = hls_webvtt_cues(f"{base}/master.m3u8")
    assert other is not None and [c.text for c in other.cues] == ["the blue elephant", "crosses the road"]
    assert other.problems == ["subtitle segment x.vtt: 'http://127.0.0.2:9/x.vtt' is not on the playlist's own "
                              "host; not read; skipped"]


def test_a_local_playlist_naming_a_file_outside_its_folder_is_not_followed(tmp_path) -> None:
    master, _ = _hls(tmp_path / "h")
    secret = tmp_path / "secret.vtt"
    secret.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nthe server's secret\n")
    (master.parent / "subs.m3u8").write_text(f"#EXTM3U\n#EXTINF:4.0,\n../secret.vtt\n#EXTINF:4.0,\n{secret}\n")
    track = load_text_track(str(master))
    assert track.cues == [] and len(track.problems) == 2
    assert all("outside the playlist's folder" in p for p in track.problems)


def test_an_unreadable_playlist_is_one_problem_not_a_failure(tmp_path) -> None:
    bad = tmp_path / "bad.m3u8"
    bad.write_bytes(b"#EXTM3U\n\xff\xfe")
    track = hls_webvtt_cues(str(bad))
    assert track is not None and track.cues == [] and "is not UTF-8 text" in track.problems[0]
