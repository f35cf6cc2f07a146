"""`--verify`: the rule asked as a yes/no question of the global LLM over the episode's segments.

The question goes through the one memory answer path (`Conversations.ask_once`: retrieval,
query-aware tokens for the episode's segments, ATA, the global LLM), scoped to the episode's time range.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tempo.agent.monitoring.monitor import Verifier
from tempo.memory.alerts import Rule

if TYPE_CHECKING:
    from tempo.agent.conversations import Conversations

MAX_REASON = 300  # characters kept of the answer's first line
VERIFY_MAX_NEW_TOKENS = 64


def verification_question(rule: Rule) -> str:
    return (
        f'Does the video show the following: "{rule.text}"? '
        "Answer Yes or No first, then give the reason in one short sentence."
    )


def parse_verdict(answer: str) -> tuple[bool | None, str]:
    """(True for yes, False for no, None when the answer starts with neither; its first line)."""
    printable = "".join(c for c in answer if c.isprintable() or c == "\n")  # no control bytes in an alert
    line = next((x.strip() for x in printable.splitlines() if x.strip()), "")
    first = re.match(r"\W*([A-Za-z]+)", line)
    word = first.group(1).lower() if first else ""
    verdict = True if word == "yes" else False if word == "no" else None
    return verdict, line[:MAX_REASON]


def conversation_verifier(
    conversations: Conversations, *, max_new_tokens: int = VERIFY_MAX_NEW_TOKENS
) -> Verifier:
    """A verifier asking one-shot questions through `conversations` (its model, memory and index)."""
    settings = conversations.settings.with_inputs(max_new_tokens=max_new_tokens)

    def verify(alert: dict[str, Any], rule: Rule) -> tuple[bool | None, str]:
        result = conversations.ask_once(
            alert["stream"],
            verification_question(rule),
            time_range=(float(alert["start"]), float(alert["end"])),
            settings=settings,
        )
        return parse_verdict(result["answer"])

    return verify
