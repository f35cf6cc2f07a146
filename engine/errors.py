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


class NoFileSourceError(InvalidInputError):
    """Speech asked for later of a stream whose source cannot be read again (a live source)."""

    def __init__(self, stream: str, source: str) -> None:
        super().__init__(
            f"stream {stream!r} was ingested from a live source ({source}) that cannot be read again, so its "
            "speech can only be transcribed while it is ingested (`tempo ingest --asr`)"
        )


class SourceGoneError(InvalidInputError):
    """Speech asked for later of a stream whose file is no longer there."""

    def __init__(self, stream: str, path: str) -> None:
        super().__init__(
            f"{path!r}, the file stream {stream!r} was ingested from, no longer exists, so its speech cannot "
            "be transcribed"
        )
