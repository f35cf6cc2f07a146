"""The HTTP answer of a user error is decided by its category (tempo.errors), in one table."""

from __future__ import annotations

import pytest
from tempo.agent.errors import InvalidQuestionError, ThreadNotFoundError
from tempo.errors import (
    ConflictError,
    InvalidInputError,
    InvalidTimeScopeError,
    NotFoundError,
    TimedOutError,
    TooManyRequestsError,
    UnavailableError,
)
from tempo.memory.errors import (
    ColdShardCorruptError,
    MemoryUnavailableError,
    StreamBusyError,
    UnknownAlertError,
    UnknownRuleError,
    UnknownStreamError,
)
from tempo.models.errors import CheckpointError, ModelNotAvailableError
from tempo.streaming.errors import SourceNotFoundError
from tempo.tools.errors import (
    ClipRangeError,
    JobNotFoundError,
    ModelTimeoutError,
    QueueFullError,
    SourceNotAllowedError,
)
from tempo.tools.server_problems import STATUS_BY_CATEGORY, status_of


def test_the_category_table() -> None:
    assert {
        InvalidInputError: 422,
        NotFoundError: 404,
        ConflictError: 409,
        TooManyRequestsError: 429,
        UnavailableError: 503,
        TimedOutError: 504,
    } == STATUS_BY_CATEGORY


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UnknownStreamError("cam", []), 404),
        (ThreadNotFoundError("t1"), 404),
        (JobNotFoundError("no ingest job 'j'"), 404),
        (UnknownRuleError("r"), 404),
        (UnknownAlertError("a"), 404),
        (StreamBusyError("the stream is being ingested"), 409),
        (QueueFullError(3), 429),
        (ModelTimeoutError("the question took more than 1 s"), 504),
        (MemoryUnavailableError("lost the connection to Redis"), 503),
        (ColdShardCorruptError("bad checksum"), 503),
        (ModelNotAvailableError("no weights"), 503),
        (CheckpointError("incomplete"), 503),
        (InvalidQuestionError("the question is empty; ask something about the video"), 422),
        (InvalidTimeScopeError("the time scope must end after it starts (got 30 s to 10 s)"), 422),
        (ClipRangeError("too long"), 422),
        (SourceNotAllowedError("outside the media root"), 422),
        (SourceNotFoundError("nothere.mp4"), 422),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_each_error_answers_with_its_category_status(error: Exception, status: int) -> None:
    assert status_of(error) == status
