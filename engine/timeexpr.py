"""Time expressions shared by the question side (the agent's time scopes and rewrite) and the answer
side (`tempo.engine.citations`), and the one clock format of times shown to a user.

Only the vocabulary lives here (durations, colon times, the model's `<t seconds>` tags, clock times);
what an expression means for a stream is decided by the callers:
- durations: "10 minutes", "1.5 s", "2 min 30 s", "an hour and a half", "half an hour", "1h30m";
  number words up to twenty, the tens up to ninety, "a"/"an", "a couple of" (2) and "a few" (3).
  Single-letter units are accepted only after digits ("12 s", "12s", "1 h"); a bare "m" only inside
  a compact form such as "2m30s", since "5 m" reads as metres just as often.
- colon times: "1:05" (two parts) and "00:01:05" (three parts), optional decimals "1:05.5".
- tags: `<12.5 seconds>` exactly as the global LLM sees them before each segment (DESIGN §2).
All values are seconds as floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_WORDS: dict[str, float] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
    "a couple of": 2, "a few": 3,
}  # fmt: skip

# Unit spellings -> seconds. Long forms work after words and digits, short ones after digits only.
LONG_UNITS: dict[str, float] = {
    "hours": 3600, "hour": 3600, "hrs": 3600, "hr": 3600,
    "minutes": 60, "minute": 60, "mins": 60, "min": 60,
    "seconds": 1, "second": 1, "secs": 1, "sec": 1,
}  # fmt: skip
SHORT_UNITS: dict[str, float] = {"h": 3600, "s": 1}


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUM_WORD = _alternation(list(NUMBER_WORDS))
_LONG = _alternation(list(LONG_UNITS))
_DIGITS = r"\d+(?:\.\d+)?"
# One "<number> <unit>" item. The unit must end the word ("12 so" is not twelve seconds).
_ITEM = (
    r"\d+h\d+m(?:\d+s)?(?![a-z])|\d+m\d+(?:\.\d+)?s(?![a-z])"
    rf"|(?:{_DIGITS}\s*(?:{_LONG}|[hs])|(?<![\w'-])(?:{_NUM_WORD})\s+(?:{_LONG}))(?![a-z])"
)
_SPECIAL = (
    r"half\s+an?\s+(?:hour|minute)|(?:an?\s+)?half[\s-]hour|(?:a\s+)?quarter\s+(?:of\s+an\s+)?hour"
    r"|an?\s+(?:hour|minute)\s+and\s+a\s+half"
)
# A duration: special phrases, or up to 4 items joined by spaces, commas or "and" ("1 hour, 2 minutes
# and 5 seconds"). The bound keeps matching linear on adversarial text (a long "9 minutes, 9 minutes,
# ..." chain would otherwise be rescanned from every position).
DURATION = rf"(?:(?<![\w.]){_SPECIAL}|(?<![\w.])(?:{_ITEM})(?:\s*(?:,\s*|and\s+)?(?:{_ITEM})){{0,3}})"
DURATION_RE = re.compile(DURATION, re.IGNORECASE)
_ITEM_RE = re.compile(
    r"(?P<ch>\d+)h(?P<cm>\d+)m(?:(?P<cs>\d+)s)?|(?P<mm>\d+)m(?P<ms>\d+(?:\.\d+)?)s"
    rf"|(?P<num>{_DIGITS}|{_NUM_WORD})\s*(?P<unit>{_LONG}|[hs])(?![a-z])",
    re.IGNORECASE,
)

COLON = r"(?<![\d:.])\d{1,3}:[0-5]\d(?::[0-5]\d)?(?:\.\d+)?(?![\d:])"
COLON_RE = re.compile(COLON)

TAG = r"<\s*(?P<tag>\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s)\s*>"
TAG_RE = re.compile(TAG, re.IGNORECASE)

# Clock times: "10:30 pm", "10:30:15am", "10am", "7 p.m.", "10 o'clock", "noon", "midnight". CLOCK
# has no groups, so callers can embed it in bigger patterns; parse a match with `parse_clock`.
CLOCK = (
    r"(?<![\d:.])\d{1,2}(?::[0-5]\d(?::[0-5]\d)?)?\s*[ap]\.?\s?m\.?(?![a-z])"
    r"|(?<![\d:.])\d{1,2}(?::[0-5]\d)?\s*o'?\s?clock|\b(?:noon|midday|midnight)\b"
)
CLOCK_RE = re.compile(CLOCK, re.IGNORECASE)
_CLOCK_PARTS_RE = re.compile(
    r"(?P<h>\d{1,2})(?::(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?)?\s*(?P<ampm>[ap])\.?\s?m\.?"
    r"|(?P<h2>\d{1,2})(?::(?P<m2>[0-5]\d))?\s*o'?\s?clock|(?P<word>noon|midday|midnight)",
    re.IGNORECASE,
)


def parse_duration(text: str) -> float | None:
    """Seconds of a duration phrase matched by `DURATION_RE` (None if it is not one)."""
    phrase = " ".join(text.lower().split())
    special = re.fullmatch(_SPECIAL, phrase)
    if special:
        if phrase.startswith("half"):
            return 1800.0 if "hour" in phrase else 30.0
        if "quarter" in phrase:
            return 900.0
        if "and a half" in phrase:
            return 5400.0 if "hour" in phrase else 90.0
        return 1800.0  # "(a) half hour"
    total = 0.0
    found = False
    for item in _ITEM_RE.finditer(phrase):
        found = True
        if item.group("num") is not None:
            num = item.group("num")
            value = float(num) if num[0].isdigit() else NUMBER_WORDS[num]
            unit = item.group("unit")
            total += value * (LONG_UNITS.get(unit) or SHORT_UNITS[unit])
        elif item.group("ch") is not None:
            total += int(item.group("ch")) * 3600 + int(item.group("cm")) * 60 + int(item.group("cs") or 0)
        else:
            total += int(item.group("mm")) * 60 + float(item.group("ms"))
    return total if found else None


def parse_colon(text: str) -> tuple[float, float | None]:
    """A colon time as an offset in seconds, and as a time of day in seconds after midnight.

    "1:05" -> (65.0 as M:SS, 3900.0 as H:MM); "01:02:03" -> (3723.0 as H:MM:SS, 3723.0 as H:MM:SS).
    The time-of-day reading is None when it cannot be one (hours above 23).
    """
    main, _, frac = text.partition(".")
    parts = [int(p) for p in main.split(":")]
    fraction = float(f"0.{frac}") if frac else 0.0
    if len(parts) == 2:
        offset = parts[0] * 60 + parts[1] + fraction
        clock = parts[0] * 3600 + parts[1] * 60 + fraction * 60 if parts[0] <= 23 else None
    else:
        offset = parts[0] * 3600 + parts[1] * 60 + parts[2] + fraction
        clock = offset if parts[0] <= 23 else None
    return float(offset), clock


@dataclass(frozen=True)
class ClockTime:
    """A time of day (seconds after midnight) from an explicit clock phrase ("10am", "10 o'clock")."""

    seconds: float


def parse_clock(text: str) -> ClockTime | None:
    """The time of day of a clock phrase matched by `CLOCK_RE` (None for impossible ones: "13 pm")."""
    match = _CLOCK_PARTS_RE.fullmatch(text.strip())
    if match is None:
        return None
    if match.group("word") is not None:
        return ClockTime(0 if match.group("word").lower() == "midnight" else 12 * 3600)
    if match.group("h") is not None:
        hour, minute, second = int(match.group("h")), int(match.group("m") or 0), int(match.group("s") or 0)
        if not 1 <= hour <= 12:
            return None
        ampm = match.group("ampm").lower()
        hour = hour % 12 + (12 if ampm == "p" else 0)
    else:
        hour, minute, second = int(match.group("h2")), int(match.group("m2") or 0), 0
        if hour > 23:
            return None
    return ClockTime(hour * 3600 + minute * 60 + second)


def format_clock(seconds: float) -> str:
    """Stream seconds as M:SS(.s) or H:MM:SS(.s): the one clock format of every output (the console's
    `clock` in tools/static/console.js writes the same). Rounded to 0.1 s first, so 119.98 s is 2:00."""
    h, rest = divmod(round(float(seconds), 1), 3600)
    m, s = divmod(rest, 60)
    frac = f"{s:04.1f}" if s != int(s) else f"{int(s):02d}"
    return f"{int(h)}:{int(m):02d}:{frac}" if h else f"{int(m)}:{frac}"
