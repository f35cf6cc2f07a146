"""The decoder stage of an ingest (engine/ingest.py): the segment iterator run on its own thread,
handing segments to the model thread through a bounded queue (back-pressure)."""

from __future__ import annotations

import queue
import threading
from typing import Any

from tempo.streaming import Segment

_END = object()  # sentinel the decoder thread puts after the last segment


class SegmentDecoder(threading.Thread):
    """Runs the segment iterator in its own thread; a bounded queue gives back-pressure."""

    def __init__(self, segments: Any, depth: int) -> None:
        super().__init__(name="tempo-decode", daemon=True)
        self.segments = segments
        self.out: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for segment in self.segments:
                while not self.stop.is_set():
                    try:
                        self.out.put(segment, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, re-raised there
            self.error = exc
        finally:
            close = getattr(self.segments, "close", None)
            if close is not None:
                close()
            while True:
                try:
                    self.out.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    if self.stop.is_set():
                        break

    def next_batch(self, size: int) -> list[Segment] | None:
        """Up to `size` segments: waits for the first, takes what else is ready. None at the end."""
        first = self.out.get()
        if first is _END:
            return None
        batch = [first]
        while len(batch) < size:
            try:
                item = self.out.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self.out.put(_END)  # seen again by the next call
                break
            batch.append(item)
        return batch
