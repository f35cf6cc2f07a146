"""The model-family seam: `TempoModel` is a `ModelFamily`, and the Protocol names exactly what the engine
(ingest, recall, the queue worker, the reference pipeline, the rewrite node, the service and the
commands) reads from a model — no more, no less."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import torch
from tempo.models import ModelFamily, TempoModel

from .conftest import make_segment

ROOT = Path(__file__).resolve().parents[2]
# Where the engine and its callers live.
CALLER_FILES = ("service.py",)
CALLER_FOLDERS = ("memory", "engine", "agent", "tools", "eval")
# Names a caller holds the family by: `model.X`, `self.model.X`, `service.model.X`, `svc.model.X`.
OWNERS = {"self", "service", "svc"}

FAMILY_MEMBERS = {
    "config",
    "device",
    "model_dir",
    "processor",
    "num_memory_tokens",
    "memory_dim",
    "centre_time",
    "check_question_fits",
    "score_segments",
    "compress",
    "compress_with_rules",
    "answer",
    "generate_text",
}
# Offered for a family's router (the open-weights family scores without compressing); no caller yet.
NOT_YET_CALLED = {"score_segments"}


def _protocol_members() -> set[str]:
    declared = {name for name in vars(ModelFamily) if not name.startswith("_")}
    return declared | set(ModelFamily.__annotations__)


def _attributes_read_from_the_model() -> dict[str, set[str]]:
    """{attribute: files} for every `model.X` / `<owner>.model.X` in the callers' source."""
    files = [ROOT / f for f in CALLER_FILES]
    for folder in CALLER_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            holder = node.value
            direct = isinstance(holder, ast.Name) and holder.id == "model"
            owned = (
                isinstance(holder, ast.Attribute)
                and holder.attr == "model"
                and isinstance(holder.value, ast.Name)
                and holder.value.id in OWNERS
            )
            if direct or owned:
                found.setdefault(node.attr, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_tiny_tempo_model_is_a_model_family(tiny_model: TempoModel) -> None:
    assert isinstance(tiny_model, ModelFamily)


def test_the_protocol_names_what_the_engine_uses() -> None:
    assert _protocol_members() == FAMILY_MEMBERS
    used = _attributes_read_from_the_model()
    outside = {name: files for name, files in used.items() if name not in FAMILY_MEMBERS}
    assert not outside, f"callers read model attributes the ModelFamily protocol lacks: {outside}"
    assert set(used) == FAMILY_MEMBERS - NOT_YET_CALLED


def test_tempo_model_methods_take_the_protocols_arguments() -> None:
    for name, member in vars(ModelFamily).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        expected = [(p.name, p.kind) for p in inspect.signature(member).parameters.values()]
        ours = [(p.name, p.kind) for p in inspect.signature(getattr(TempoModel, name)).parameters.values()]
        assert ours == expected, name


def test_score_segments_gives_each_segment_a_score_per_query(tiny_model: TempoModel) -> None:
    segments = [make_segment(0), make_segment(1)]
    scores = tiny_model.score_segments(segments, ["dog", "a red car"])
    assert scores.shape == (2, 2) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    alone, _ = tiny_model.compress(segments, "dog")
    np.testing.assert_allclose(scores[:, 0], alone, atol=1e-6)  # the first query is the compress pass
    assert tiny_model.score_segments(segments, []).shape == (2, 0)


def test_answer_takes_temperature_per_call_greedy_by_default(tiny_model: TempoModel) -> None:
    _, memory = tiny_model.compress([make_segment(0)], "dog")
    kept = [(2.0, memory[0, :8])]
    assert not hasattr(tiny_model.config, "temperature")  # a question's knob, never the load-time config's
    greedy = tiny_model.answer("What?", kept, max_new_tokens=8)
    assert tiny_model.answer("What?", kept, max_new_tokens=8, temperature=0.0) == greedy
    ids = tiny_model.generate_ids(
        tiny_model.build_answer_embeddings("What?", kept)[0], max_new_tokens=8, temperature=5.0, seed=0
    )
    sampled = tiny_model.answer("What?", kept, max_new_tokens=8, temperature=5.0)
    assert sampled == tiny_model.tokenizer.decode(ids).strip()  # seed 0 when none is given


def test_generate_text_continues_a_text_only_prompt(tiny_model: TempoModel) -> None:
    prompt = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    ids = tiny_model.generate_ids(
        tiny_model.network.model.embed_tokens(torch.tensor([tiny_model.tokenizer.encode(prompt)])),
        max_new_tokens=6,
    )
    assert tiny_model.generate_text(prompt, max_new_tokens=6) == tiny_model.tokenizer.decode(ids)
