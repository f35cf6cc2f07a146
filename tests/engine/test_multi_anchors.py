"""A cross-stream answer's anchors are read for every stream at once (tempo.engine.multi.assemble_streams):
one Redis round trip for all streams, through the AnchorCache or not; on the real memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tempo.engine.multi import assemble_streams, composite, split_compression, split_plan, stream_tag, union_plan
from tempo.engine.recall import Compression, assemble
from tempo.memory.anchors import AnchorCache

STREAMS = ("anchors1", "anchors2", "anchors3")


@pytest.fixture(scope="module")
def three(live_service):
    from agent_live_memory import add_live_stream  # loaded by tests/conftest.py

    for n, name in zip((6, 5, 7), STREAMS, strict=True):
        add_live_stream(live_service, name, segments=n, wallclock0=None)
    yield live_service
    for name in STREAMS:
        live_service.store.delete_stream(name)


def _plan(service):
    infos = service.store.stream_infos(STREAMS)
    settings = next(iter(infos.values())).settings
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(settings.tokens_per_segment, settings.token_dim)).astype(np.float32)
    compression = Compression({composite(0, 2): (0.9, tokens), composite(2, 4): (0.4, tokens)}, 0)
    plan = union_plan(list(STREAMS), {s: service.index.timeline(s) for s in STREAMS}, compression,
                      tokens_per_segment=settings.tokens_per_segment, budget=256, min_tokens=4,
                      stored_tokens=settings.stored_tokens)  # fmt: skip
    return infos, plan, compression


def _counting(monkeypatch, store) -> list[str]:
    calls: list[str] = []
    for method in ("token_heads", "token_heads_many"):
        real = getattr(store, method)

        def counting(*args, _real=real, _name=method, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, method, counting)
    return calls


def test_anchors_of_every_stream_come_in_one_read_and_match_stream_by_stream(three, monkeypatch):
    store = three.store
    infos, plan, compression = _plan(three)
    per_stream = split_compression(compression, list(STREAMS))
    expected = [
        (stream_tag(s, centre), tokens)
        for s, sub in split_plan(plan, list(STREAMS)).items()
        for centre, tokens in assemble(store, infos[s], sub, per_stream[s])  # each stream's own read
    ]
    assert sum(int((~p.candidate).sum()) > 0 for p in split_plan(plan, list(STREAMS)).values()) == 3
    calls = _counting(monkeypatch, store)
    got = assemble_streams(store, infos, plan, compression)
    assert calls == ["token_heads_many"]  # one round trip for the three streams' anchors
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(got, expected, strict=True))


def test_the_anchor_cache_reads_only_what_it_lacks_for_all_streams_at_once(three, monkeypatch):
    store = three.store
    infos, plan, compression = _plan(three)
    plain = assemble_streams(store, infos, plan, compression)
    cache = AnchorCache(store)
    calls = _counting(monkeypatch, store)
    first = assemble_streams(store, infos, plan, compression, anchors=cache)
    assert calls == ["token_heads_many"] and cache.hits == 0 and cache.misses > 0
    again = assemble_streams(store, infos, plan, compression, anchors=cache)
    assert calls == ["token_heads_many"] and cache.hits == cache.misses  # the second time: no read at all
    for got in (first, again):
        assert [t for t, _ in got] == [t for t, _ in plain]
        for (_, a), (_, b) in zip(got, plain, strict=True):  # the cache keeps float16
            assert torch.allclose(a.float(), b.float(), atol=1e-2, rtol=1e-2)
