"""Errors of the agent layer a user can hit (CLI, API, tools): one sentence each."""

from __future__ import annotations

from tempo.errors import ConflictError, InvalidInputError, NotFoundError, UnavailableError


class ThreadNotFoundError(NotFoundError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no conversation thread {thread_id!r} (see `tempo threads` for the existing ones)")
        self.thread_id = thread_id


class ThreadExistsError(ConflictError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"a conversation thread {thread_id!r} already exists")
        self.thread_id = thread_id


class InvalidThreadIdError(InvalidInputError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"invalid thread id {thread_id!r}: use 1 to 128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
        self.thread_id = thread_id


class ThreadStreamMismatchError(InvalidInputError):
    def __init__(self, thread_id: str, stream: str, requested: str) -> None:
        super().__init__(
            f"thread {thread_id!r} is about stream {stream!r}, not {requested!r}; "
            "start a new thread for another stream"
        )
        self.thread_id = thread_id
        self.stream = stream
        self.requested = requested


class WebhookSecretError(UnavailableError):
    """Webhook deliveries are signed; without the shared secret ($TEMPO_WEBHOOK_SECRET) nothing is sent."""


class InvalidQuestionError(InvalidInputError):
    """An empty question, or one longer than tempo.inputs.QUESTION_MAX_CHARS."""


class ToolInputError(InvalidInputError):
    """Tool arguments that do not fit the tool's input schema."""


class NoStreamsError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("the memory holds no streams yet; ingest a source first (`tempo ingest`)")


class EmptyStreamSetError(InvalidInputError):
    def __init__(self) -> None:
        super().__init__("the list of streams is empty; name at least one stream, or leave it out for all streams")
