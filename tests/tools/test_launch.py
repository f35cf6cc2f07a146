"""tempo.tools.launch: the one launcher of a `tempo` HTTP server subprocess (benchmarks, tests, scripts).

Its success path runs in every serve and MCP-over-HTTP test (their fixtures start servers with it)."""

from __future__ import annotations

import pytest
from tempo.tools.errors import ServerStartError
from tempo.tools.launch import ServerProcess


def test_a_server_that_exits_at_once_is_reported_with_its_stderr() -> None:
    with pytest.raises(ServerStartError) as failed:
        ServerProcess(["serve", "--no-such-option"], timeout=60)
    assert str(failed.value) == (
        "tempo serve did not start: tempo: error: unrecognized arguments: --no-such-option (see `tempo --help`)"
    )
