"""`ModelQueue`: FIFO admission of questions to the model in `tempo serve` (REST ask and MCP ask_video).

When `max_waiting` questions already wait the answer is 429 with Retry-After (QueueFullError), and a
question that does not finish within its timeout is answered 504 (ModelTimeoutError). Search, lists
and clips never enter it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import anyio
from tempo.tools.errors import ModelTimeoutError, QueueFullError


class ModelQueue:
    """FIFO admission to the model: at most one question runs, at most `max_waiting` wait.

        queue.reserve()                      # QueueFullError now (429), before any response starts
        result = await queue.submit(func)    # waits its turn, runs func in a worker thread

    A question that has waited and run for `timeout` seconds gets ModelTimeoutError (504); its model
    work is not interrupted (a forward pass cannot be) and keeps the slot until it ends. Submit
    right after reserving, in a task of its own, so a client that goes away cannot leak the slot.
    """

    def __init__(self, max_waiting: int, timeout: float) -> None:
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.waiting = 0
        self._slot = asyncio.Semaphore(1)  # FIFO: asyncio wakes waiters in arrival order
        self._mean_s = 5.0  # running mean of a question's seconds (for Retry-After)

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * (self.waiting + 1)))

    def reserve(self) -> None:
        """Take a place in the queue, or QueueFullError when `max_waiting` questions already wait."""
        if self.waiting >= self.max_waiting:
            raise QueueFullError(self.retry_after())
        self.waiting += 1

    async def submit(self, func: Callable[[], Any]) -> Any:
        """Wait for the model (after `reserve`), then run `func` in a worker thread holding it."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._slot.acquire()
        except TimeoutError:
            raise ModelTimeoutError(f"the question waited more than {self.timeout:g} s for the model") from None
        finally:
            self.waiting -= 1
        t0 = time.perf_counter()
        task = asyncio.ensure_future(anyio.to_thread.run_sync(func))

        def release(_: Any) -> None:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t0)
            self._slot.release()

        task.add_done_callback(release)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise ModelTimeoutError(f"the question took more than {self.timeout:g} s") from None

    async def __call__(self, func: Callable[[], Any]) -> Any:
        """reserve + submit (what the MCP endpoint's ask_video goes through)."""
        self.reserve()
        return await self.submit(func)
