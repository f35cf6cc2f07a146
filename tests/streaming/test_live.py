"""Live sources: MPEG-TS published over loopback TCP, a dropped connection, reconnection and the gap."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.live import DropOldestQueue
from tempo.streaming.synthetic import read_frame_time, write_mpegts

PART_SECONDS = 3.0  # each connection carries 3 s of video
OUTAGE_SECONDS = 1.0  # the publisher is gone this long between the two connections
SECOND_PART_START = 10.0  # content time (and pts) the second part starts at: a restarted encoder


class LoopbackPublisher:
    """Serves one MPEG-TS file per connection on 127.0.0.1, paced at real time, then hangs up.

    Between two files the listening socket is closed for `outage` seconds, so the client's
    reconnection attempts are refused until the publisher comes back.
    """

    def __init__(self, parts: list[bytes], duration: float, outage: float) -> None:
        self.parts, self.duration, self.outage = parts, duration, outage
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = probe
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.stop = threading.Event()

    def _listen(self) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(1)
        return sock

    def _serve(self) -> None:
        for number, data in enumerate(self.parts):
            if number > 0:
                time.sleep(self.outage)  # nobody listens: connection refused
                self.listener = self._listen()
            assert self.listener is not None
            self.listener.settimeout(20)
            conn, _ = self.listener.accept()
            self.listener.close()
            started, chunk = time.monotonic(), 188 * 16
            with conn:
                for offset in range(0, len(data), chunk):
                    if self.stop.is_set():
                        return
                    due = started + self.duration * offset / len(data)
                    time.sleep(max(0.0, due - time.monotonic()))
                    try:
                        conn.sendall(data[offset : offset + chunk])
                    except OSError:
                        return
            # Leaving the with-block closes the connection in the middle of the live stream.

    def __enter__(self) -> LoopbackPublisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def ts_parts(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("live")
    fps = 30.0
    first = write_mpegts(folder / "a.ts", duration=PART_SECONDS, fps=fps, keyint=15)
    second_times = [SECOND_PART_START + i / fps for i in range(round(PART_SECONDS * fps))]
    second = write_mpegts(folder / "b.ts", duration=PART_SECONDS, fps=fps, keyint=15, frame_times=second_times)
    return [Path(first).read_bytes(), Path(second).read_bytes()]


@pytest.fixture()
def publisher(ts_parts: list[bytes]) -> Iterator[LoopbackPublisher]:
    with LoopbackPublisher(ts_parts, duration=PART_SECONDS, outage=OUTAGE_SECONDS) as running:
        yield running


def test_live_stream_reconnects_after_a_drop_records_the_gap_and_resumes(publisher: LoopbackPublisher) -> None:
    config = SamplingConfig(max_edge=64, window=4, connect_timeout=2.0, read_timeout=2.0,
                            reconnect_attempts=3, reconnect_delay=0.2, reconnect_max_delay=0.5)
    started = time.time()
    with iter_segments(f"tcp://127.0.0.1:{publisher.port}", stream_id="cam", config=config) as stream:
        assert stream.info.live and stream.info.kind == "network"
        segments = list(stream)
    stats = stream.stats

    content = [np.array([read_frame_time(f) for f in s.frames]) for s in segments]
    first_part = [i for i, c in enumerate(content) if c.max() < SECOND_PART_START]
    second_part = [i for i, c in enumerate(content) if c.min() >= SECOND_PART_START]
    assert len(first_part) + len(second_part) == len(segments)  # no segment mixes the two connections
    assert first_part and second_part
    assert stats.reconnects == 1

    # The gap is recorded on the first segment after the reconnection, and on the timeline.
    resumed = segments[second_part[0]]
    assert resumed.gap_before >= OUTAGE_SECONDS * 0.5
    assert stats.gap_seconds == pytest.approx(resumed.gap_before)
    before = segments[first_part[-1]]
    assert resumed.start >= before.end
    assert resumed.start - float(before.timestamps[-1]) >= resumed.gap_before
    assert all(segments[i].gap_before == 0.0 for i in range(len(segments)) if i != second_part[0])

    # Indices go on without a hole, and the resumed window starts a fresh window of slots.
    assert [s.index for s in segments] == list(range(len(segments)))
    assert resumed.first_frame_index % config.window == 0

    # Within each connection the live timeline follows the stream's own clock: the frame shown
    # at each timestamp is the right one (content time − timestamp constant to one source frame).
    for part in (first_part, second_part):
        offsets = np.concatenate([content[i] - segments[i].timestamps for i in part])
        assert offsets.max() - offsets.min() <= 1 / 30 + 1e-6
    # Each connection delivered its 3 s at 2 fps, from its first frame on.
    for part in (first_part, second_part):
        assert sum(segments[i].num_frames for i in part) >= 6
    assert content[first_part[0]][0] == 0.0 and content[second_part[0]][0] == SECOND_PART_START

    # Wall-clock capture times are real Unix times, in order.
    walls = [s.wallclock_start for s in segments]
    assert all(w is not None for w in walls)
    assert started - 1 <= walls[0] <= time.time() and walls == sorted(walls)


def test_bounded_queue_drops_the_oldest_item_and_counts_it() -> None:
    queue = DropOldestQueue(maxsize=2)
    for item in range(5):
        queue.put(item)
    queue.close()
    assert queue.dropped == 3
    assert [queue.get(), queue.get()] == [3, 4]
    with pytest.raises(StopIteration):
        queue.get()


def test_bounded_queue_hands_the_reader_error_to_the_consumer() -> None:
    queue = DropOldestQueue(maxsize=2)
    queue.put("last segment")
    queue.close(RuntimeError("reader failed"))
    assert queue.get() == "last segment"
    with pytest.raises(RuntimeError, match="reader failed"):
        queue.get()


def test_slow_consumer_gets_the_newest_segments_and_a_count_of_the_dropped(ts_parts: list[bytes]) -> None:
    config = SamplingConfig(max_edge=64, window=1, live_queue=2, connect_timeout=2.0, read_timeout=2.0,
                            reconnect_attempts=0)
    with (
        LoopbackPublisher(ts_parts[:1], duration=PART_SECONDS, outage=0.0) as publisher,
        iter_segments(f"tcp://127.0.0.1:{publisher.port}", config=config) as stream,
    ):
        time.sleep(PART_SECONDS + 1.0)  # the consumer is busy while the whole stream arrives
        received = list(stream)
    assert stream.stats.dropped_segments >= 3
    assert len(received) == 2  # the queue never held more than its bound
    assert stream.stats.segments == len(received) + stream.stats.dropped_segments
    # What is left is the newest video, in order, numbered without holes (the stream starts there).
    n = stream.stats.segments
    assert [s.index for s in received] == [0, 1]
    assert [s.start for s in received] == pytest.approx([(n - 2) * 0.5, (n - 1) * 0.5], abs=0.3)


def test_segments_dropped_for_a_slow_consumer_are_a_gap_not_a_hole_in_the_indices(ts_parts: list[bytes]) -> None:
    config = SamplingConfig(max_edge=64, window=1, live_queue=2, connect_timeout=2.0, read_timeout=2.0,
                            reconnect_attempts=0)
    with (
        LoopbackPublisher(ts_parts[:1], duration=PART_SECONDS, outage=0.0) as publisher,
        iter_segments(f"tcp://127.0.0.1:{publisher.port}", config=config) as stream,
    ):
        received = [next(stream)]  # keeping up at first ...
        time.sleep(PART_SECONDS + 1.0)  # ... then busy while the rest arrives: segments are dropped
        received += list(stream)
    assert stream.stats.dropped_segments >= 2
    assert [s.index for s in received] == list(range(len(received)))
    # The dropped stretch is recorded on the first segment after it, and nowhere else.
    gaps = [(a, b) for a, b in itertools.pairwise(received) if b.gap_before > 0]
    assert len(gaps) == 1
    before, after = gaps[0]
    assert after.gap_before == pytest.approx(after.start - before.end)
    assert after.gap_before >= 0.5 * stream.stats.dropped_segments - 0.3
    assert stream.stats.gap_seconds == pytest.approx(after.gap_before)


def test_udp_stream_that_goes_silent_is_reopened_and_the_gap_recorded(ts_parts: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()

    def publish() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for number, data in enumerate(ts_parts):
                if number:
                    time.sleep(1.5)  # the source goes silent
                started, chunk = time.monotonic(), 188 * 7  # the usual 1316-byte datagrams
                for offset in range(0, len(data), chunk):
                    if stop.is_set():
                        return
                    time.sleep(max(0.0, started + PART_SECONDS * offset / len(data) - time.monotonic()))
                    sender.sendto(data[offset : offset + chunk], ("127.0.0.1", port))

    config = SamplingConfig(max_edge=64, window=4, connect_timeout=2.0, read_timeout=0.8,
                            reconnect_attempts=2, reconnect_delay=0.1, reconnect_max_delay=0.2)
    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    segments, content = [], []
    try:
        with iter_segments(f"udp://127.0.0.1:{port}", config=config) as stream:
            for segment in stream:  # a live consumer: stop once the stream is back
                segments.append(segment)
                content.append(np.array([read_frame_time(f) for f in segment.frames]))
                if content[-1].min() >= SECOND_PART_START:
                    break
    finally:
        stop.set()
        thread.join(timeout=10)
    after = [i for i, c in enumerate(content) if c.min() >= SECOND_PART_START]
    assert stream.stats.reconnects == 1
    assert after and segments[after[0]].gap_before >= 1.0
    assert sum(s.num_frames for s in segments[: after[0]]) >= 5  # the first part came through
