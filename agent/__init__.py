"""The agent layer (DESIGN §3, issue 5): conversations over memory.

- `checkpoint`: `RedisCheckpointSaver`, LangGraph checkpoints on plain Redis commands.
- `threads`: `ThreadStore`, conversation transcripts (`tempo threads show`).
- `keyspace`: `RedisKeyspace`, the client, key prefix and sliding expiry both of them share.
- `timescope`: a question's time scope and stream scope; `rewrite`: the fallback rewrite and the
  rewrite validator (the deterministic parts of the rewrite node); `timeexpr`: the time vocabulary
  they share with `citations`.
- `citations`: times in an answer -> citations on real segments.
- `graph`: the StateGraph; `memory_backend`: `MemoryBackend`, what its nodes call on the memory and
  model (`TempoService`), with the values they exchange in `backend`; `llm`: text-only generation for
  the rewrite.
- `conversations`: `Conversations`, the entry point `tempo chat`, `tempo ask --thread`, the LangChain
  tools and the MCP server share; `toolkit`: the tools' typed inputs and operations.

- `monitoring/`: rules scored on every segment, hysteresis episodes, verification, alert answers,
  webhook delivery (issue 11).

`tempo.agent.Conversations` is importable from here (loaded on first use: it brings torch).

May import `tempo.streaming`, `tempo.models`, `tempo.memory` and the shared top-level modules
(`tempo.errors`, `tempo.inputs`, `tempo.settings`); `tempo.service` only in annotations (under
TYPE_CHECKING); never `tempo.tools` (tests/test_import_stages.py).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Conversations":
        from tempo.agent.conversations import Conversations

        return Conversations
    raise AttributeError(f"module 'tempo.agent' has no attribute {name!r}")
