"""Text-only generation with the model family's LLM (no visual tokens), for the rewrite node.

The model's own prompt builders (tempo.models.text) always place a video between the system prompt
and the question; rewriting a follow-up needs none, so the ChatML prompt is written here and fed
through the family's `generate_text` (greedy, KV cache, stops at <|im_end|>).
"""

from __future__ import annotations

from collections.abc import Sequence

from tempo.agent.rewrite import HistoryTurn
from tempo.models.family import ModelFamily
from tempo.models.text import IM_END, IM_START, plain_text

REWRITE_SYSTEM_PROMPT = (
    "You rewrite the user's last question about a video so that it can be understood without the "
    "conversation. Keep its meaning and any times it mentions. Reply with the rewritten question only."
)
MAX_ANSWER_CHARS = 300  # of each previous answer shown to the rewrite model


def rewrite_prompt(history: Sequence[HistoryTurn], question: str) -> str:
    """The ChatML prompt: system instructions, the previous turns (oldest first), the follow-up."""
    lines = []
    for turn in history:
        lines.append(f"Q: {plain_text(turn['standalone_question'] or turn['question'])}")
        lines.append(f"A: {plain_text(turn['answer'][:MAX_ANSWER_CHARS])}")
    conversation = "\n".join(lines)
    return (
        f"{IM_START}system\n{REWRITE_SYSTEM_PROMPT}{IM_END}\n"
        f"{IM_START}user\nConversation so far:\n{conversation}\n\nLast question: {plain_text(question)}{IM_END}\n"
        f"{IM_START}assistant\n"
    )


def rewrite_with_model(
    model: ModelFamily, history: Sequence[HistoryTurn], question: str, *, max_new_tokens: int = 48
) -> str:
    """The model's standalone version of `question` (unvalidated: the graph checks it)."""
    return model.generate_text(rewrite_prompt(history, question), max_new_tokens=max_new_tokens)
