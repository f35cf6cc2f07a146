"""What can go wrong in the engine's stages, each as one sentence a user can act on."""

from __future__ import annotations

from collections.abc import Sequence

from tempo.errors import InvalidInputError


class MixedStreamsError(InvalidInputError):
    """Streams whose memories were made by different models cannot be asked together."""

    def __init__(self, streams: Sequence[str]) -> None:
        super().__init__(
            f"the streams {', '.join(streams)} were ingested with different models; ask about them separately"
        )


class MixedFamiliesError(InvalidInputError):
    """Streams written by different model families (Tempo memory tokens, Qwen3-VL frames) cannot share
    one prompt."""

    def __init__(self, families: dict[str, str]) -> None:
        named = ", ".join(f"{s} ({f})" for s, f in sorted(families.items()))
        super().__init__(
            f"the streams {named} were ingested by different model families and cannot be asked together; "
            "ask about each family's streams separately"
        )
