"""The deterministic parts of the rewrite node: a fallback rewrite and a rewrite validator (time and
stream scopes live in `tempo.agent.timescope`).

**Fallback rewrite.** `fallback_rewrite(question, history)`: when the model's rewrite is unusable,
a follow-up that cannot stand alone (it starts with "and", "what about"..., refers back with "it",
"they", "then", "after that"..., or has fewer than 4 words) is appended to the first sentence of the
previous standalone question: "Who entered the shop? What colour was his coat?" (earlier follow-ups
are not accumulated). A question that stands alone is kept as it is. A follow-up that moves in time
("and after that?") is rewritten with clock times instead (`tempo.agent.scopes.standalone_for`).

**Validator.** `rewrite_problem(candidate, question, history)` names what makes a model's rewrite
unusable (None when it is usable); see the function for the rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NotRequired, TypedDict

MAX_REWRITE_WORDS = 64
MAX_REWRITE_CHARS = 400



class HistoryTurn(TypedDict):
    """A previous turn of the thread, as the rewrite (model and fallback) sees it."""

    question: str
    standalone_question: str
    answer: str
    # What "that" refers to in the next turn (tempo.agent.scopes.reference_of): the ranges the turn
    # looked at ([] for the whole stream) and the span of its citations (None without any).
    ranges: NotRequired[list[list[float]]]
    cited: NotRequired[list[float] | None]
    # Across streams (tempo.agent.stream_scopes): the same per stream, on each stream's own clock
    # (absent when one scope held for every stream).
    stream_ranges: NotRequired[dict[str, list[list[float]]] | None]
    stream_cited: NotRequired[dict[str, list[float]] | None]


# ----- fallback rewrite --------------------------------------------------------------------------------

_FOLLOW_UP_OPENERS = re.compile(
    r"^(?:and|but|so|then|also|what\s+about|how\s+about|what\s+else|who\s+else|anything\s+else|"
    r"after\s+that|before\s+that|and\s+then|why|how\s+come|same)\b",
    re.IGNORECASE,
)
# Words that point back into the conversation. "that"/"there" are left out: too often not anaphoric
# ("the car that...", "is there...").
_BACK_REFERENCES = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|those|these|this\s+one|"
    r"that\s+one|then|else|again|same|afterwards|after\s+that|before\s+that|earlier|later)\b",
    re.IGNORECASE,
)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text)


def needs_context(question: str) -> bool:
    """Whether a question cannot stand alone and needs the conversation to be understood."""
    q = question.strip()
    return bool(len(_words(q)) < 4 or _FOLLOW_UP_OPENERS.search(q) or _BACK_REFERENCES.search(q))


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".?!" else text + "?"


def fallback_rewrite(question: str, history: Sequence[str], max_words: int = MAX_REWRITE_WORDS) -> str:
    """A standalone question without a model: the previous standalone question + the follow-up.

    history: the previous standalone questions of the thread, oldest first.
    """
    follow_up = " ".join(question.split())
    if not history or not needs_context(follow_up):
        return follow_up
    previous = " ".join(history[-1].split())
    follow_up = _sentence(follow_up[:1].upper() + follow_up[1:])
    budget = max(1, max_words - len(follow_up.split()))
    # Only the first sentence of the previous question (the original subject) and the follow-up:
    # a thread's earlier follow-ups are never accumulated.
    sentences = [_sentence(s.strip()) for s in re.findall(r"[^.?!]+[.?!]*", previous) if s.strip()]
    if not sentences:
        return follow_up
    return " ".join([*sentences[0].split()[:budget], follow_up])


# ----- validator ---------------------------------------------------------------------------------------

STOPWORDS = frozenset(
    {
        "a", "an", "the", "and", "or", "but", "so", "of", "to", "in", "on", "at", "by", "for", "with", "from",
        "into", "onto", "about", "as", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did",
        "done", "have", "has", "had", "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
        "that", "this", "these", "those", "there", "here", "it", "its", "they", "them", "their", "he", "him",
        "his", "she", "her", "i", "me", "my", "we", "us", "our", "you", "your", "not", "no", "yes", "then",
        "than", "too", "also", "very", "just", "can", "could", "would", "should", "will", "shall", "may",
        "might", "must", "any", "some", "all", "each", "after", "before", "again", "else", "same", "other",
        "more", "most", "such", "only", "own", "up", "down", "out", "over", "under", "off", "one", "ones",
        "happen", "happened", "happens",
    }
)
_PROMPT_MARKERS = re.compile(
    r"standalone|rewrite|rewritten|follow-?up\s+question|conversation\s+history|chat\s+history|"
    r"<\|[a-z_]+\|>|^\s*(?:user|assistant|system)\s*:|\bquestion\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_WORDLIKE = re.compile(r"[\W_]*(?:[^\W\d_]+(?:['’-][^\W\d_]+)*|[\d:.,]+)[\W_]*")
_LABEL = re.compile(
    r"^\s*(?:standalone\s+question|rewritten\s+question|rewrite|question|answer|output)\s*:\s*",
    re.IGNORECASE,
)


def clean_rewrite(text: str) -> str:
    """A model's rewrite without the usual wrapping: a leading label, quotes, markdown, extra lines."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = _LABEL.sub("", lines[0]).strip()
    if not first and len(lines) > 1:  # "Standalone question:\n<the question>"
        first = lines[1]
    return first.strip().strip("*_`\"'“”‘’ ").strip()


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _words(text) if len(w) >= 3 and w.lower() not in STOPWORDS}


def _shares(word: str, vocabulary: set[str]) -> bool:
    # Same word, or the same first 4 letters (colour/colours, enter/entered/entering).
    return word in vocabulary or any(len(word) >= 4 and len(v) >= 4 and v[:4] == word[:4] for v in vocabulary)


def rewrite_problem(
    candidate: str,
    question: str,
    history: Sequence[str] = (),
    *,
    max_words: int = MAX_REWRITE_WORDS,
    max_chars: int = MAX_REWRITE_CHARS,
) -> str | None:
    """Why a model's rewrite cannot be used, or None if it can. Pass it through `clean_rewrite` first.

    history: what the rewrite may draw on (previous standalone questions and answers).
    Unusable: empty; longer than `max_words` words or `max_chars` characters; under 70 % word-like
    tokens or under 60 % letters among its visible characters; one token 4 times in a row, or under
    40 % distinct tokens among 8 or more; containing prompt wording (labels, role names, chat special
    tokens, "standalone", "rewrite"); not mentioning any content word of the question (or, when the
    question has none, e.g. "and after that?", of the history); or drawing under half of its content
    words from the question and history (a model inventing a different question).
    """
    text = candidate.strip()
    if not text:
        return "empty"
    tokens = text.split()
    if len(tokens) > max_words or len(text) > max_chars:
        return "too long"
    wordlike = [t for t in tokens if _WORDLIKE.fullmatch(t)]
    visible = [c for c in text if not c.isspace()]
    letters = [c for c in visible if c.isalpha()]
    if len(wordlike) < 0.7 * len(tokens) or len(letters) < 0.6 * len(visible):
        return "not mostly words"
    lowered = [t.lower().strip(".,?!;:") for t in tokens]
    if any(lowered[i] == lowered[i + 1] == lowered[i + 2] == lowered[i + 3] for i in range(len(lowered) - 3)):
        return "repetitive"
    if len(lowered) >= 8 and len(set(lowered)) < 0.4 * len(lowered):
        return "repetitive"
    if _PROMPT_MARKERS.search(text):
        return "echoes the prompt"
    words = _content_words(text)
    asked = _content_words(question)
    context = set().union(*(_content_words(h) for h in history)) if history else set()
    anchor = asked or context
    if anchor and not any(_shares(w, anchor) for w in words):
        return "unrelated to the question"
    if words and asked | context:
        known = sum(1 for w in words if _shares(w, asked | context))
        if known < 0.5 * len(words):
            return "unrelated to the question"
    return None


def is_usable_rewrite(candidate: str, question: str, history: Sequence[str] = ()) -> bool:
    return rewrite_problem(candidate, question, history) is None


def choose_standalone(
    llm_output: str | None, question: str, history_questions: Sequence[str], history_texts: Sequence[str] = ()
) -> tuple[str, str]:
    """The standalone question to use and where it came from: "question" (first turn or already
    standalone), "model" (the model's rewrite passed the validator) or "fallback".

    history_questions: previous standalone questions, oldest first; history_texts: anything else the
    rewrite may draw on (previous answers).
    """
    if not history_questions:
        return " ".join(question.split()), "question"
    if llm_output is not None:
        cleaned = clean_rewrite(llm_output)
        if rewrite_problem(cleaned, question, [*history_questions, *history_texts]) is None:
            return cleaned, "model"
    if not needs_context(question):
        return " ".join(question.split()), "question"
    return fallback_rewrite(question, history_questions), "fallback"
