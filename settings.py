"""Settings in one place: a question's settings and the `TEMPO_*` environment variables.

Light on purpose (no torch): the CLI builds its flags' defaults from these dataclasses before any
model code is imported. `AskSettings` is the one per-question settings object. Load-time knobs live
beside what they configure and are dataclasses too: sampling in `tempo.streaming.SamplingConfig`, the
model's in `tempo.models.TempoInferenceConfig`, a stream's retention in `tempo.memory.RetentionPolicy`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

# Every environment variable Tempo reads, by name (read only through `environment()`).
ENV_MODEL = "TEMPO_MODEL"  # checkpoint directory or hub id
ENV_EMBEDDER = "TEMPO_EMBEDDER"  # SigLIP directory or hub id
ENV_REDIS_URL = "TEMPO_REDIS_URL"  # an external Redis instead of the embedded one
ENV_HOME = "TEMPO_HOME"  # data directory (embedded Redis, FAISS snapshots)
ENV_MCP_TOKEN = "TEMPO_MCP_TOKEN"  # bearer token of `tempo mcp --http`
ENV_WEBHOOK_SECRET = "TEMPO_WEBHOOK_SECRET"  # HMAC-SHA256 key of alert webhook signatures
ENV_WRITER_LEASE = "TEMPO_WRITER_LEASE"  # seconds an ingest's writer lease lives without renewal
ENV_QUEUE_MAX_JOBS = "TEMPO_QUEUE_MAX_JOBS"  # work queue: outstanding jobs per stream (backpressure)
ENV_QUEUE_CLAIM_IDLE = "TEMPO_QUEUE_CLAIM_IDLE"  # work queue: seconds before another worker claims a job
ENV_QUEUE_MAX_FAILURES = "TEMPO_QUEUE_MAX_FAILURES"  # work queue: attempts before a job is dead-lettered
# 1: webhooks and network sources may not reach loopback or private addresses (tempo.streaming.netguard)
ENV_DENY_PRIVATE_NETWORKS = "TEMPO_DENY_PRIVATE_NETWORKS"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Environment:
    """The `TEMPO_*` variables as set now (and `no_proxy`, which FFmpeg reads); an empty value counts as unset."""

    # Not ours, but read by FFmpeg's HTTP client: hosts it reaches around the guard proxy
    # (tempo.streaming.netproxy), so the strict network policy refuses to run beside it.
    no_proxy: str | None = None
    model: str | None = None
    embedder: str | None = None
    redis_url: str | None = None
    home: str | None = None
    mcp_token: str | None = None
    writer_lease: str | None = None
    queue_max_jobs: str | None = None
    queue_claim_idle: str | None = None
    queue_max_failures: str | None = None
    webhook_secret: str | None = None
    deny_private_networks: str | None = None  # read with `deny_private_networks()`


def environment() -> Environment:
    """The `TEMPO_*` variables, read now (tests and `tempo demo` change them at run time)."""

    def get(name: str) -> str | None:
        return os.environ.get(name) or None

    return Environment(
        no_proxy=get("no_proxy"),
        model=get(ENV_MODEL),
        embedder=get(ENV_EMBEDDER),
        redis_url=get(ENV_REDIS_URL),
        home=get(ENV_HOME),
        # Raw, not "empty is unset": a token variable that is set but blank is a mistake the HTTP
        # servers refuse in one sentence, rather than silently serving without a token.
        mcp_token=os.environ.get(ENV_MCP_TOKEN),
        writer_lease=get(ENV_WRITER_LEASE),
        queue_max_jobs=get(ENV_QUEUE_MAX_JOBS),
        queue_claim_idle=get(ENV_QUEUE_CLAIM_IDLE),
        queue_max_failures=get(ENV_QUEUE_MAX_FAILURES),
        # Raw as well: a secret that is set but blank or short is refused in one sentence, not ignored.
        webhook_secret=os.environ.get(ENV_WEBHOOK_SECRET),
        deny_private_networks=get(ENV_DENY_PRIVATE_NETWORKS),
    )


def deny_private_networks() -> bool:
    """$TEMPO_DENY_PRIVATE_NETWORKS as a yes/no (1/true/yes/on, 0/false/no/off; unset: no). Any other
    value is refused in one sentence: a typo in a security switch must not silently leave it off."""
    value = (environment().deny_private_networks or "").strip().lower()
    if not value or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    from tempo.errors import InvalidInputError

    raise InvalidInputError(
        f"${ENV_DENY_PRIVATE_NETWORKS} must be 1 or 0 (true/false, yes/no, on/off), not {value[:40]!r}"
    )


@dataclass(frozen=True)
class AskSettings:
    """The knobs of one question, in one object: made once at the edge (these defaults, then the CLI
    flags, REST fields or MCP/LangChain arguments a caller gave) and passed down whole to retrieval,
    ATA and the global LLM. Load-time things (device, dtype, context, sampling) are the model's
    `TempoInferenceConfig`, never read back from here or there.

    Every entry point (`tempo ask`, `tempo ask --stream [--thread]`, `tempo chat`, REST, MCP,
    LangChain, `tempo eval`, alert verification) starts from these defaults.
    """

    top_k: int = 16  # FAISS candidates per question, before temporal neighbours
    neighbours: int = 1  # segments added on each side of each FAISS hit
    budget: int = 8192  # B: visual tokens over the whole timeline (4096 or 8192 in the paper)
    min_tokens: int = 4  # m: ATA's floor (0.5 token/frame for an 8-frame window)
    max_new_tokens: int = 1024  # longest answer (the release's infer.py default)
    temperature: float = 0.0  # 0: greedy, as the reference (only greedy answers are cached)
    widen_factor: int = 4  # weak evidence: retrieve K × this once more
    weak_evidence: float = 0.5  # highest candidate relevance under this widens once
    answer_cache: bool = True  # greedy answers cached in Redis (same question, same memory → same text)
    history_turns: int = 4  # previous turns of a thread the rewrite sees
    evidence_segments: int = 8  # compressed segments a result lists as evidence, most relevant first
    text_tokens: int = 1024  # cap on subtitle/transcript words in the answer's prompt (taken from the budget)

    def with_inputs(self, **inputs: Any) -> AskSettings:
        """These settings with the caller's inputs applied; an input left as None keeps the default
        (a flag or field the user did not give)."""
        given = {k: v for k, v in inputs.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self
