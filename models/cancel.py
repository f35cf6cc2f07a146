"""Cancelling a question from outside the threads that answer it: Ctrl-C in `tempo chat`, a console
client that closes its connection (`tempo serve`).

    with cancellable() as cancel:               # in the thread that asks
        conversations.ask(stream, question)     # AnswerCancelled once cancel.set() was called
    cancel.set()                                # from a signal handler or the event loop

The scope is a ContextVar holding a `threading.Event`. LangGraph and anyio copy the context into the
worker threads that run a question's nodes, so the stages that take time see the event of the
question they serve: the compressor pass checks it between batches, the decoding loop at every token
(tempo.models.answer), and either stops there. Outside a scope nothing is ever cancelled. No torch
here: the CLI imports it before the model stack.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[threading.Event | None] = ContextVar("tempo_answer_cancel", default=None)


class AnswerCancelled(Exception):
    """The asker cancelled the question (control flow: the entry point that cancelled it catches it,
    no thread turn and no cached answer is left behind)."""


@contextmanager
def cancellable(event: threading.Event | None = None) -> Iterator[threading.Event]:
    """A cancel scope for the questions asked inside it: setting the event (from any thread) stops them."""
    event = event if event is not None else threading.Event()
    token = _CURRENT.set(event)
    try:
        yield event
    finally:
        _CURRENT.reset(token)


def current_cancel() -> threading.Event | None:
    """The event of the enclosing scope (None outside any)."""
    return _CURRENT.get()


def check_cancelled() -> None:
    """Raise AnswerCancelled when the enclosing scope was cancelled."""
    event = _CURRENT.get()
    if event is not None and event.is_set():
        raise AnswerCancelled("the question was cancelled")
