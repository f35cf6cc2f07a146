"""The agent: asking. Questions about memory, one-shot or on conversation threads (DESIGN §3).

- `conversations`: `Conversations`, the one entry point of every question (`ask` on a thread,
  `ask_once` outside any thread) for `tempo ask --stream`, `tempo chat`, REST, MCP and LangChain;
  each returns the one `TurnResult` (tempo.engine.result) for one `AskSettings` (tempo.settings).
- `graph`: the StateGraph, its typed state and nodes; `turn`: running one turn and building its
  `TurnResult`; `memory_backend`: `MemoryBackend`, what the nodes call on the engine's recall steps
  and the service's resources; `llm`: the text-only rewrite through the model family.
- `checkpoint`: `RedisCheckpointSaver`, LangGraph checkpoints on plain Redis commands; `threads`:
  `ThreadStore`, conversation transcripts; `keyspace`: the client, prefix and expiry both share.
- `timescope`: a question's time and stream scope (its time words from `tempo.engine.timeexpr`);
  `scopes`: several ranges and follow-ups that move in time; `stream_scopes`: a cross-stream
  question's time words on each stream's own clock;
  `rewrite`: the fallback rewrite, its validator and `HistoryTurn`; `toolkit`: the tools' typed
  inputs and operations. Citations (times in an answer -> real segments) are `tempo.engine.citations`.
- `monitoring/`: rules scored on every segment, hysteresis episodes, verification, alert answers,
  webhook delivery, and `monitored_ingest` (an ingest with the stream's rules) (issue 11).

`tempo.agent.Conversations` is importable from here (loaded on first use: it brings torch).

May import `tempo.service` (the resources it asks with), `tempo.engine`, `tempo.memory`,
`tempo.models`, `tempo.streaming` and the shared top-level modules (`tempo.errors`, `tempo.inputs`,
`tempo.settings`); never `tempo.tools` (tests/test_import_stages.py).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Conversations":
        from tempo.agent.conversations import Conversations

        return Conversations
    raise AttributeError(f"module 'tempo.agent' has no attribute {name!r}")
