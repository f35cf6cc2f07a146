"""Questions across streams, on the agent's side: which streams a question is about, and questions about
alerts over several streams (the recall itself is tempo.engine.multi).

    choose_streams(service, None, "which camera saw the red truck?", None)   # every stream
    choose_streams(service, ["cam1", "cam2"], question, None)                # exactly these
    choose_streams(service, None, "and on cam3?", ("cam1", "cam2"))          # a follow-up naming cam3

A follow-up keeps its thread's stream set unless the question names streams of the memory, then those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tempo.agent.errors import EmptyStreamSetError, NoStreamsError
from tempo.agent.monitoring.alert_answers import answer_alert_question
from tempo.engine.multi import stream_infos
from tempo.engine.text_track import fuse_across_streams
from tempo.inputs import check_time_range
from tempo.memory.alerts import AlertStore
from tempo.memory.errors import UnknownStreamError
from tempo.memory.index import SearchHit
from tempo.memory.store_types import StreamInfo


def named_streams(question: str, known: Sequence[str]) -> list[str]:
    """The streams of `known` that `question` names as whole words (case-insensitive), sorted."""
    if not known:
        return []
    names = "|".join(re.escape(s) for s in sorted(known, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9._-])(?:{names})(?![A-Za-z0-9_-]|\.[A-Za-z0-9])", re.IGNORECASE)
    canonical = {s.lower(): s for s in known}
    return sorted({canonical[m.group(0).lower()] for m in pattern.finditer(question)})


def choose_streams(
    service: Any, requested: Sequence[str] | None, question: str, previous: Sequence[str] | None
) -> list[str]:
    """The sorted stream set of a question: `requested` when given (each must exist: UnknownStreamError
    names the known ones), else a follow-up's `previous` set unless the question names other streams,
    else every stream of the memory."""
    return list(choose_stream_infos(service, requested, question, previous))


def choose_stream_infos(
    service: Any, requested: Sequence[str] | None, question: str, previous: Sequence[str] | None
) -> dict[str, StreamInfo]:
    """`choose_streams` with the chosen streams' headers, read in one round trip: the question's one
    read of them (the graph's steps reuse it)."""
    if requested is not None:
        names = sorted(dict.fromkeys(str(s) for s in requested))
        if not names:
            raise EmptyStreamSetError()
        return stream_infos(service.store, names)
    found = {s.name: s for s in service.streams()}
    known = sorted(found)
    if not known:
        raise NoStreamsError()
    if previous:
        named = named_streams(question, known)
        chosen = named or sorted(dict.fromkeys(previous))
        for name in chosen:
            if name not in found:  # a stream of the thread deleted since: one sentence
                raise UnknownStreamError(name, known)
        return {name: found[name] for name in chosen}
    return {name: found[name] for name in known}


def alerts_across(alerts: AlertStore, streams: Sequence[str], question: str) -> dict[str, Any]:
    """An alert question over several streams: each stream's answer (tempo.agent.monitoring.alert_answers),
    one line block per stream, citations naming their stream."""
    parts = [(s, answer_alert_question(alerts, s, question)) for s in streams]
    fired = [(s, p) for s, p in parts if p["alerts"]]
    if not fired:
        scope = parts[0][1]["scope"] if parts else None
        where = f" {scope['phrase']}" if scope and scope.get("phrase") else ""
        answer = f"No alerts fired on streams {', '.join(streams)}{where}."
    else:
        answer = "\n".join(p["answer"] for _, p in fired)
    citations = [{**c, "stream": s} for s, p in fired for c in p["citations"]]
    return {"answer": answer, "citations": citations, "scope": parts[0][1]["scope"] if parts else None}


def search_streams(
    service: Any,
    streams: Sequence[str] | None,
    query: str,
    *,
    top_k: int,
    start: float | None = None,
    end: float | None = None,
) -> list[SearchHit]:
    """The moments of `streams` (None: every stream) that best match `query`, best first: the query embedded
    once, one FAISS top-K over all of them, fused by reciprocal rank with each stream's keyword (BM25)
    matches of the words said or subtitled there, ranked as one list (tempo.engine.text_track); SearchHit
    names its stream. A missing `end` is the longest chosen stream's end; streams shorter than `start`
    simply have no moments."""
    names = sorted(dict.fromkeys(streams)) if streams is not None else sorted(s.name for s in service.streams())
    if streams is not None and not names:
        raise EmptyStreamSetError()
    ends = [e for e in (service.stream(n).end for n in names) if e is not None]  # UnknownStreamError
    time_range = check_time_range(start, end, max(ends) if ends else None)
    if not names:
        return []
    service.index.sync()
    pictures = service.index.search(service.embedder.embed_text(query), top_k, streams=names, time_range=time_range)
    words = [(n, h) for n in names for h in service.recall.keywords.search(n, query, top_k, time_range)]
    return fuse_across_streams(pictures, words, top_k)
