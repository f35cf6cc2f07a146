"""The agent layer (DESIGN §3, issue 5): conversations over memory.

- `checkpoint`: `RedisCheckpointSaver`, LangGraph checkpoints on plain Redis commands.
- `threads`: `ThreadStore`, conversation transcripts (`tempo threads show`).
- `rewrite`: time scopes, stream scope, fallback rewrite and rewrite validator (deterministic parts
  of the rewrite node); `timeexpr`: the time vocabulary it shares with `citations`.
- `citations`: times in an answer -> citations on real segments.
- `backend`: the `AgentBackend` protocol the graph calls (model + memory); `graph`: the StateGraph.
"""
