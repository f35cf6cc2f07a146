"""A camera on loopback for the live tests: MPEG-TS over TCP on 127.0.0.1, paced at real time."""

from __future__ import annotations

import socket
import threading
import time


class StallingPublisher:
    """Serves an MPEG-TS file once on 127.0.0.1 at real time, but stalls `pause` seconds at fraction
    `at` of it (a camera that freezes, then goes on: its timestamps jump by the time it lost)."""

    def __init__(self, data: bytes, seconds: float, pause: float, at: float, port: int = 0) -> None:
        self.data, self.seconds, self.pause, self.at = data, seconds, pause, at
        self.stop = threading.Event()
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(60)
        conn, _ = self.server.accept()
        started, chunk, paused = time.monotonic(), 188 * 16, 0.0
        with conn:
            for offset in range(0, len(self.data), chunk):
                if not paused and offset >= len(self.data) * self.at:
                    self.stop.wait(self.pause)
                    paused = self.pause
                if self.stop.is_set():
                    return
                due = started + paused + self.seconds * offset / len(self.data)
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    conn.sendall(self.data[offset : offset + chunk])
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        self.thread.join(timeout=30)
