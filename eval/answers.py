"""Which option letter a model's answer names, decided the way the release's lmms-eval tasks decide it.

LVBench, Video-MME and MLVU use lmms-eval's shared multiple-choice extractor
(`lmms_eval/tasks/_task_utils/mcq_extract.py`, choices A–D): every way a letter can appear is a
candidate ranked by how telling its form is — the answer starting or ending with a bare letter, an
answer phrase ("the answer is B"), "(B)", "B.", "B:", "B)", "B " — and the last occurrence of the best
form wins; a letter anywhere is the last resort; nothing gives "" (wrong). LongVideoBench uses its own
rule: drop a few answer prefixes, then the first capital A–E anywhere; if there is none, lmms-eval
picks a random option. We make that guess reproducible (seeded by the item id) and flag it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Phrases after which the next choice letter is the answer (lmms-eval's list, in its order).
ANSWER_PHRASES: tuple[str, ...] = (
    "the answer is", "answer is", "the correct answer is", "correct answer is", "the best answer is",
    "best answer is", "the correct option is", "correct option is", "the best option is", "best option is",
    "the choice is", "choice is", "the correct choice is", "correct choice is", "i choose", "i select",
    "i pick", "my answer is", "my choice is", "옵션", "정답은", "답은", "답:", "答案是", "答案为", "选", "答えは",
)
# How telling each form is; higher wins, then the later position.
_RANK = {"start": 10, "end": 9, "phrase": 7, "parentheses": 6, "period": 5, "colon": 4, "right_paren": 3,
         "space": 2, "fallback": 0}
_EDGE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "'", '"')

LONGVIDEOBENCH_PREFIXES: tuple[str, ...] = (
    "The best answer is", "The correct answer is", "The answer is", "The answer", "The best option is",
    "The correct option is", "Best answer:", "Best option:",
)


def extract_choice(response: str, choices: Sequence[str] = tuple("ABCD")) -> str:
    """The option letter `response` names ("" when none), as lmms-eval's `extract_mcq_answer`."""
    if not response or not response.strip():
        return ""
    text = response.strip()
    for mark in _EDGE_PUNCTUATION:  # one pass, in this order: "(B)." loses its "." but keeps "(B)"
        text = text.strip(mark)
    text = f" {text} "  # so a letter at either end has a neighbour
    found: list[tuple[int, int, str]] = []  # (rank, position, letter)
    for form, pattern in (("parentheses", "({})"), ("period", "{}."), ("colon", "{}:"), ("right_paren", "{})"),
                          ("space", "{} ")):
        for letter in choices:
            needle = pattern.format(letter)
            if needle in text:
                found.append((_RANK[form], text.rfind(needle), letter))
    lowered = text.lower()
    for phrase in ANSWER_PHRASES:
        at = lowered.find(phrase)
        if at == -1:
            continue
        for letter in choices:
            pos = text.find(letter, at + len(phrase))
            if pos != -1:
                found.append((_RANK["phrase"], pos, letter))
    bare = text.strip()
    for letter in choices:
        if bare.startswith(letter) and (len(bare) == 1 or not bare[1].isalpha()):
            found.append((_RANK["start"], 0, letter))
    for letter in choices:
        if bare.endswith(letter) and (len(bare) == 1 or not bare[-2].isalpha()):
            found.append((_RANK["end"], len(text) - 1, letter))
    if not found:
        found = [(_RANK["fallback"], text.rfind(letter), letter) for letter in choices if letter in text]
    if not found:
        return ""
    # Best form first; within a form the later position; ties keep the order found (a stable sort).
    return sorted(found, key=lambda c: (c[0], c[1]), reverse=True)[0][2]


@dataclass(frozen=True)
class Extracted:
    """The letter scored, and whether it was a random guess (LongVideoBench when no letter appears)."""

    letter: str
    guessed: bool = False


def longvideobench_letter(response: str, choices: Sequence[str], *, seed: str = "") -> Extracted:
    """LongVideoBench's parse: prefixes removed, first A–E anywhere, else a (seeded) random option."""
    text = response.strip()
    for prefix in LONGVIDEOBENCH_PREFIXES:
        text = text.replace(prefix, "")
    match = re.search(r"[ABCDE]", text)
    if (len(text.split()) > 10 and match is None) or match is None:
        return Extracted(random.Random(f"longvideobench:{seed}").choice(list(choices)), guessed=True)
    return Extracted(match[0])


def score_letter(benchmark: str, response: str, choices: Sequence[str], *, seed: str = "") -> Extracted:
    """The letter the benchmark's own scoring reads from `response`."""
    if benchmark == "longvideobench":
        return longvideobench_letter(response, choices, seed=seed)
    return Extracted(extract_choice(response, choices))
