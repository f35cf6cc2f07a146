"""The benchmark prompts and the answer-letter extraction equal the release's (lmms-eval task functions).

tests/eval/data/goldens.json was written by tests/eval/make_goldens.py, which imports the release's
own `lmms_eval/tasks/*/utils.py` and `_task_utils/mcq_extract.py` (FeiElysia/Tempo at the commit
recorded in the file) and calls them on the docs and answers listed there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tempo.eval.answers import extract_choice, longvideobench_letter
from tempo.eval.prompts import BENCHMARKS, benchmark

GOLDENS = json.loads((Path(__file__).parent / "data" / "goldens.json").read_text())
PROMPT_CASES = [
    (name, case) for name, entry in GOLDENS["benchmarks"].items() for case in entry["prompts"]
]


@pytest.mark.parametrize(("name", "case"), PROMPT_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(PROMPT_CASES)])
def test_question_text_equals_the_release_task(name: str, case: dict) -> None:
    # The release's wrapper also drops "<image>" from the task's text before using it.
    assert benchmark(name).question(case["doc"]) == case["text"].replace("<image>", "")


def test_every_benchmark_has_goldens_and_the_release_generation_length() -> None:
    assert set(GOLDENS["benchmarks"]) == set(BENCHMARKS)
    for name, entry in GOLDENS["benchmarks"].items():
        spec = benchmark(name)
        assert spec.max_new_tokens == entry["max_new_tokens"]
        assert spec.lmms_task == entry["lmms_task"]
        assert spec.context_limit == 32768
    assert benchmark("longvideobench").max_new_tokens == 32


def test_image_marker_is_removed_like_the_release_wrapper() -> None:
    doc = {"question": "Where is the <image> sign?", "options": ["left", "right"]}
    assert benchmark("lvbench").question(doc) == (
        "Where is the  sign?\n(A) left\n(B) right\nAnswer the question with the option letter"
    )


def test_unknown_benchmark_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="lvbench, videomme, mlvu, longvideobench"):
        benchmark("egoschema")


@pytest.mark.parametrize("row", GOLDENS["extraction"], ids=lambda r: repr(r["response"])[:40])
def test_letter_extraction_equals_lmms_eval(row: dict) -> None:
    assert extract_choice(row["response"], tuple("ABCD")) == row["mcq_abcd"]
    got = longvideobench_letter(row["response"], tuple("ABCDE"), seed="q1")
    assert got.guessed == row["longvideobench_guessed"]
    if not got.guessed:
        assert got.letter == row["longvideobench"]
    else:
        # lmms-eval guesses at random; ours is a seeded guess among the options, the same every run.
        assert got.letter in "ABCDE"
        assert longvideobench_letter(row["response"], tuple("ABCDE"), seed="q1") == got
