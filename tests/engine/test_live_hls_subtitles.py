"""WebVTT subtitles of a LIVE HLS source (issue 24): a loopback HTTP server whose video and subtitle
playlists grow while Tempo ingests them (segments written over time, the subtitles a little behind
the video, as packagers publish them); the cues of segments published after ingest started land on
the segments shown while they are said, at the video's stream times."""

from __future__ import annotations

import functools
import logging
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import pytest
from tempo.streaming import SamplingConfig
from tempo.streaming.hls_live_subtitles import LiveSubtitles, parse_media_playlist
from tempo.streaming.synthetic import write_test_video

STEP = 2.0  # seconds per HLS segment (video and subtitles)
COUNT = 4  # segments published in all
LAG = 1.0  # seconds the subtitle segment comes after its video segment
LIVE = SamplingConfig(fps=2.0, window=4, max_edge=128, connect_timeout=5.0, read_timeout=8.0, reconnect_attempts=0)


def _word(k: int) -> tuple[float, float, str]:
    return (STEP * k + 0.5, STEP * k + 1.5, f"word number {k}")


def _vtt(k: int, mpegts: int) -> str:
    a, b, text = _word(k)
    return (f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n"
            f"00:00:{a:06.3f} --> 00:00:{b:06.3f}\n{text}\n\n")


def _playlist(prefix: str, n: int, ended: bool) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(STEP)}", "#EXT-X-MEDIA-SEQUENCE:0"]
    for k in range(n):
        lines += [f"#EXTINF:{STEP:.1f},", f"{prefix}{k}.{'vtt' if prefix == 'subs' else 'ts'}"]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else [])]) + "\n"


def _write(path: Path, text: str | bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    tmp.replace(path)  # a reader never sees half a playlist


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class LiveHLS:
    """Publishes COUNT video segments (PyAV: frames at 10 s of the MPEG-TS clock on) one every STEP s,
    each subtitle segment LAG s after its video; subtitle segment `broken` is published unreadable."""

    def __init__(self, root: Path, broken: int) -> None:
        src = root / "src"
        src.mkdir(parents=True)
        write_test_video(src / "v.m3u8", duration=STEP * COUNT, fps=10, start_pts_offset=10.0,
                         muxer_options={"hls_time": str(int(STEP)), "hls_segment_filename": str(src / "video%d.ts")})
        self.video = sorted(src.glob("video*.ts"), key=lambda p: int(p.stem[5:]))
        assert len(self.video) == COUNT
        with av.open(str(self.video[0])) as c:
            self.mpegts = int(c.streams.video[0].start_time)  # 90 kHz ticks of the first frame
        self.www, self.broken = root / "www", broken
        self.www.mkdir()
        (self.www / "master.m3u8").write_text(
            '#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",NAME="English",LANGUAGE="en",DEFAULT=YES,'
            'URI="subs.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=500000,SUBTITLES="s"\nvideo.m3u8\n')
        self.published: dict[int, float] = {}  # subtitle segment → time.monotonic() when written
        self._publish_video(1)
        self._publish_subs(1)
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(self.www)))
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/master.m3u8"
        self.stop = threading.Event()

    def _publish_video(self, n: int) -> None:
        _write(self.www / f"video{n - 1}.ts", self.video[n - 1].read_bytes())
        _write(self.www / "video.m3u8", _playlist("video", n, n == COUNT))

    def _publish_subs(self, n: int) -> None:
        k = n - 1
        _write(self.www / f"subs{k}.vtt", b"\xff\xfe not text" if k == self.broken else _vtt(k, self.mpegts))
        _write(self.www / "subs.m3u8", _playlist("subs", n, n == COUNT))
        self.published[k] = time.monotonic()

    def run(self) -> None:
        """Segments 2..COUNT, over time (call on a thread once ingest is starting)."""
        for n in range(2, COUNT + 1):
            if self.stop.wait(STEP - LAG):
                return
            self._publish_video(n)
            if self.stop.wait(LAG):
                return
            self._publish_subs(n)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def patient(monkeypatch) -> None:
    """A longer bound on a batch's wait than the 3-s default: the machine running the tests is shared
    and slow at times, and a wait that ran out would lose a cue (the order of events is unchanged)."""
    import tempo.streaming.hls_live_subtitles as live_subtitles

    monkeypatch.setattr(live_subtitles, "LIVE_SUBTITLE_WAIT", 8.0)


def test_cues_of_a_growing_live_playlist_land_on_their_segments_at_stream_times(
        live_service, tmp_path, caplog, patient) -> None:
    hls = LiveHLS(tmp_path, broken=2)
    name = "live-hls-subs"
    publisher = threading.Thread(target=hls.run, daemon=True)
    try:
        started = time.monotonic()
        publisher.start()
        with caplog.at_level(logging.WARNING, logger="tempo.streaming.hls_live_subtitles"):
            report = live_service.ingest(hls.url, name, sampling=LIVE, progress=False, batch_size=1)
        assert live_service.stream(name).source["live"] is True
        assert report.committed >= COUNT  # 2-s segments of the 8-s stream (its last frame may start one more)
        records = list(live_service.store.iter_segments(name, tokens=False))
        assert [round(r.start, 3) for r in records[:COUNT]] == [STEP * k for k in range(COUNT)]
        placed = [(r.index, (round(c.start, 3), round(c.end, 3), c.text), c.language, c.source)
                  for r in records for c in r.cues]
        # Segment k (stream time [2k, 2k+2)) keeps word k, said 0.5 s into it: the video's first frame
        # is 10 s of the MPEG-TS clock, the cue's X-TIMESTAMP-MAP maps LOCAL 0 to the same instant.
        assert placed == [(k, _word(k), "en", "container:webvtt") for k in (0, 1, 3)]
        for k in (1, 3):  # written after ingest had started
            assert hls.published[k] > started + STEP * k - 0.5
        assert [r.getMessage() for r in caplog.records if "subs2.vtt" in r.getMessage()] == [
            f"subtitle segment subs2.vtt: 'http://127.0.0.1:{hls.server.server_address[1]}/subs2.vtt' is not "
            "UTF-8 text (byte 0); skipped"]
    finally:
        hls.close()
        publisher.join(timeout=10)
        if name in live_service.store.stream_names():
            live_service.store.delete_stream(name)


def test_the_media_playlist_is_read_with_sequence_numbers_durations_and_end() -> None:
    playlist = parse_media_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:41\n"
                                    "#EXTINF:6.006,\na.vtt\n#EXTINF:5.5,title\nb.vtt\n")
    assert playlist.target == 6.0
    assert playlist.segments == [(41, 6.006, "a.vtt"), (42, 5.5, "b.vtt")] and not playlist.ended
    assert parse_media_playlist("#EXTM3U\n#EXT-X-ENDLIST\n").ended


def test_a_batch_waits_for_a_subtitle_segment_that_lags_its_video_but_not_forever(tmp_path) -> None:
    # A local live playlist (the poller reads it as it reads a remote one): segments 1 and 2 appear
    # while a batch over segment 1's time waits (the cue of segment 2, after the batch's end, shows
    # that everything up to it has been read); a batch past every segment gives up after the bound.
    (tmp_path / "subs0.vtt").write_text(_vtt(0, 900000))
    (tmp_path / "subs.m3u8").write_text(_playlist("subs", 1, False).replace(":2\n", ":1\n", 1))
    from tempo.streaming.hls_subtitles import PlaylistReader

    reader = PlaylistReader(str(tmp_path / "subs.m3u8"), 5.0)
    where = str((tmp_path / "subs.m3u8").resolve())
    poller = LiveSubtitles("subs.m3u8", reader, where, reader.read(where), "en", [(0.0, -10.0)], wait=2.0)
    try:
        assert [c.text for c in poller.take(0.0, 2.0)] == ["word number 0"]

        def publish() -> None:
            time.sleep(0.7)
            (tmp_path / "subs1.vtt").write_text(_vtt(1, 900000))
            (tmp_path / "subs2.vtt").write_text(_vtt(2, 900000))
            (tmp_path / "subs.m3u8").write_text(_playlist("subs", 3, False).replace(":2\n", ":1\n", 1))

        threading.Thread(target=publish, daemon=True).start()
        t0 = time.monotonic()
        got = poller.take(2.0, 4.0, shift=100.0)  # a restarted source's timeline: 100 s later
        assert [(round(c.start, 3), c.text) for c in got] == [(102.5, "word number 1")]
        assert time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        assert [c.text for c in poller.take(4.0, 6.0)] == ["word number 2"]
        assert 1.9 <= time.monotonic() - t0 < 3.0  # bounded: nothing came after segment 2
        assert poller.segments_read == 3 and poller.cues_read == 3
    finally:
        poller.close()


def _local_poller(root: Path, playlist: str, anchors: list[tuple[float, float]]) -> LiveSubtitles:
    from tempo.streaming.hls_subtitles import PlaylistReader

    (root / "subs.m3u8").write_text(playlist)
    reader = PlaylistReader(str(root / "subs.m3u8"), 5.0)
    where = str((root / "subs.m3u8").resolve())
    return LiveSubtitles("subs.m3u8", reader, where, reader.read(where), None, anchors, wait=0.5)


def test_a_segment_outside_the_folder_or_a_hostile_header_is_a_warning_and_the_rest_is_read(
        tmp_path, caplog) -> None:
    (tmp_path / "secret.vtt").write_text(_vtt(0, 900000))
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "subs1.vtt").write_text(_vtt(1, 900000))
    playlist = ("#EXTM3U\n#EXT-X-TARGETDURATION:1e400\n#EXT-X-MEDIA-SEQUENCE:nan\n#EXTINF:2.0,\n../secret.vtt\n"
                "#EXTINF:2.0,\nsubs1.vtt\n#EXTINF:2.0,\nmissing.vtt\n#EXTINF:2.0,\nvideo.ts\n#EXT-X-ENDLIST\n")
    assert parse_media_playlist(playlist).target == 0.0
    with caplog.at_level(logging.WARNING, logger="tempo.streaming.hls_live_subtitles"):
        poller = _local_poller(tmp_path / "h", playlist, [(0.0, -10.0)])
        try:
            assert [(round(c.start, 3), c.text) for c in poller.take(0.0, 8.0)] == [(2.5, "word number 1")]
        finally:
            poller.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("subtitle segment secret.vtt: '../secret.vtt' is outside the playlist's folder")
    assert lines[1].startswith("subtitle segment missing.vtt:") and "could not be read" in lines[1]
    assert lines[2] == "subtitle segment video.ts: not a WebVTT segment; skipped"


def test_a_stretch_across_a_reconnection_takes_each_part_with_its_connection_s_anchor(tmp_path) -> None:
    # Connection 1: media 10 s is time 0. Connection 2 from time 3.0 on, after a 1-s gap: media 12 s
    # (where it picked up) is time 3.0, so its anchor is −9; media from 12 s on is placed by it.
    for k in range(3):
        (tmp_path / f"subs{k}.vtt").write_text(_vtt(k, 900000))
    poller = _local_poller(tmp_path, _playlist("subs", 3, True), [(0.0, -10.0), (3.0, -9.0)])
    try:
        got = [(round(c.start, 3), c.text) for c in poller.take(0.0, 6.0)]
    finally:
        poller.close()
    # word 0 (media 10.5) on connection 1; word 1 (12.5) and 2 (14.5) on connection 2, one second later
    assert got == [(0.5, "word number 0"), (3.5, "word number 1"), (5.5, "word number 2")]


def test_a_queue_producer_s_live_jobs_carry_the_subtitles_published_as_it_reads(
        live_service, tmp_path, patient) -> None:
    import json

    from tempo.engine.producer import produce
    from tempo.memory.jobqueue import JobQueue, JobSpec, QueueSettings

    hls = LiveHLS(tmp_path, broken=-1)
    store, name = live_service.store, "queued-live-hls-subs"
    queue = JobQueue.for_store(store, QueueSettings(max_jobs=16))
    publisher = threading.Thread(target=hls.run, daemon=True)
    try:
        publisher.start()
        report = produce(hls.url, name, queue=queue, store=store, progress=False, spec=JobSpec(sampling=LIVE))
        assert report.queued >= COUNT
        metas = [json.loads(fields[b"job"]) for _, fields in store.client.xrange(queue.k_jobs(name))]
        assert [m.get("cu", []) for m in metas[:COUNT]] == [
            [[*_word(k), "container:webvtt", "en"]] for k in range(COUNT)]
    finally:
        hls.close()
        publisher.join(timeout=10)
        queue.delete(name)
        if name in store.stream_names():
            store.delete_stream(name)


def test_before_any_cue_a_batch_waits_for_one_fresh_reload_not_the_whole_bound(tmp_path) -> None:
    (tmp_path / "subs0.vtt").write_text("WEBVTT\n\n")  # a live rendition with nothing said yet
    poller = _local_poller(tmp_path, _playlist("subs", 1, False).replace(":2\n", ":1\n", 1), [(0.0, -10.0)])
    poller.wait = 5.0
    try:
        t0 = time.monotonic()
        assert poller.take(0.0, 2.0) == []
        assert time.monotonic() - t0 < 2.5  # a reload half a target duration (0.5 s) later, then on
        assert poller.segments_read == 1
    finally:
        poller.close()
