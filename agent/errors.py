"""Errors of the agent layer a user can hit (CLI, API, tools): one sentence each."""

from __future__ import annotations

from tempo.errors import InvalidInputError, TempoError


class ThreadNotFoundError(TempoError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no conversation thread {thread_id!r} (see `tempo threads` for the existing ones)")
        self.thread_id = thread_id


class ThreadExistsError(TempoError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"a conversation thread {thread_id!r} already exists")
        self.thread_id = thread_id


class InvalidThreadIdError(TempoError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"invalid thread id {thread_id!r}: use 1 to 128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
        self.thread_id = thread_id


class ThreadStreamMismatchError(TempoError):
    def __init__(self, thread_id: str, stream: str, requested: str) -> None:
        super().__init__(
            f"thread {thread_id!r} is about stream {stream!r}, not {requested!r}; "
            "start a new thread for another stream"
        )
        self.thread_id = thread_id
        self.stream = stream
        self.requested = requested


class InvalidTimeScopeError(TempoError):
    """A time scope given explicitly (tool argument, CLI option) that cannot be used."""


class WebhookSecretError(TempoError):
    """Webhook deliveries are signed; without the shared secret ($TEMPO_WEBHOOK_SECRET) nothing is sent."""


class InvalidQuestionError(TempoError):
    """An empty or oversized question."""


class ToolInputError(InvalidInputError):
    """Tool arguments that do not fit the tool's input schema."""
