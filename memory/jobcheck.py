"""Checking a queued job before a worker allocates anything for it (memory/jobqueue.py's jobs).

A job comes from Redis, where anything with access can write: a frame header may claim
1000×10000×10000 pixels, the metadata may be unreadable JSON or hold a string where a number goes.
`check_job` reads every field against what a producer writes (and the frame header against the
job's own timestamps and sampling) and says in one sentence what is wrong, before a byte of pixels
is decompressed. A job that fails it is a poison job: it is dead-lettered at once (retrying cannot
mend it), and its index still becomes a gap, from its metadata or, when that is unreadable, from
the plain `place` field the producer writes beside it (`job_place`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tempo.inputs import MAX_COUNT, MAX_EDGE, MAX_WINDOW
from tempo.memory.errors import JobError
from tempo.memory.frames import MAX_FRAME_BYTES

_MAGICS = (b"TQF1", b"TQF2")
MAX_JOB_CUES = 1024  # text cues one segment job may carry


def place_field(index: int, start: float, end: float, first_frame: int) -> bytes:
    """The plain `place` field of a job's entry: where its gap goes should its metadata be unreadable."""
    return f"{int(index)} {float(start)!r} {float(end)!r} {int(first_frame)}".encode()


def _number(value: Any, what: str, *, integer: bool = False, low: float = -math.inf, high: float = math.inf) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise JobError(f"the job's {what} is not {'an integer' if integer else 'a number'}")
    if not math.isfinite(value) or not low <= value <= high:
        raise JobError(f"the job's {what} ({value!r}) is out of range")
    return value


def parse_place(raw: bytes | None) -> tuple[int, float, float, int] | None:
    """(index, start, end, first frame) from a `place` field; None when absent or unreadable."""
    if not raw:
        return None
    try:
        index, start, end, first = raw.decode("ascii").split()
        place = int(index), float(start), float(end), int(first)
        _check_place(*place)
    except (ValueError, UnicodeDecodeError, JobError):
        return None
    return place


def _check_place(index: int, start: float, end: float, first: int) -> None:
    _number(index, "index", integer=True, low=0, high=MAX_COUNT)
    _number(start, "start", low=-1e12, high=1e12)
    _number(end, "end", low=start, high=1e12)
    _number(first, "first frame index", integer=True, low=0, high=1 << 62)


def check_meta(meta: Any) -> None:
    """JobError (one sentence) unless `meta` is a job's metadata as a producer writes it."""
    if not isinstance(meta, dict):
        raise JobError(str(meta) if meta else "the job's metadata is not a JSON object")
    if "error" in meta and "index" in meta and meta.get("index") == -1:
        raise JobError(str(meta["error"]))
    _check_place(meta.get("index"), meta.get("start"), meta.get("end"), meta.get("ff"))  # type: ignore[arg-type]
    ts = meta.get("ts")
    if not isinstance(ts, list) or not 1 <= len(ts) <= MAX_WINDOW:
        raise JobError(f"the job's timestamps must be a list of 1 to {MAX_WINDOW} numbers")
    for t in ts:
        _number(t, "timestamp", low=-1e12, high=1e12)
    if meta.get("wc") is not None:
        _number(meta["wc"], "wall-clock start", low=0, high=1e12)
    _number(meta.get("gap"), "gap before", low=0, high=1e12)
    _number(meta.get("fps"), "sampling rate", low=1e-6, high=1e4)
    if not isinstance(meta.get("skip", False), bool):
        raise JobError("the job's skip flag is not true or false")
    source = meta.get("source")
    if not (isinstance(source, dict) and isinstance(source.get("uri"), str) and isinstance(source.get("live"), bool)):
        raise JobError("the job's source is not a source description")
    spec = meta.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("sampling"), dict):
        raise JobError("the job's settings are not readable")
    sampling = spec["sampling"]
    _number(sampling.get("window"), "window", integer=True, low=1, high=MAX_WINDOW)
    _number(sampling.get("max_edge"), "max edge", integer=True, low=16, high=MAX_EDGE)
    _number(spec.get("stored_tokens"), "stored token count", integer=True, low=1, high=1024)
    if len(ts) > sampling["window"]:
        raise JobError(f"the job has {len(ts)} timestamps for a window of {sampling['window']} frames")
    _check_cues(meta.get("cu", []))
    # The constructors (JobSpec.from_dict, SourceInfo) check the rest of them where the job is read.


def _check_cues(rows: Any) -> None:
    """The "cu" rows of a job: [start, end, text, source, language] as the memory stores them."""
    if not isinstance(rows, list) or len(rows) > MAX_JOB_CUES:
        raise JobError(f"the job's cues must be a list of at most {MAX_JOB_CUES} rows")
    for row in rows:
        if not (isinstance(row, list) and len(row) == 5):
            raise JobError("a cue of the job is not a [start, end, text, source, language] row")
        start, end, text, source, language = row
        _number(start, "cue start", low=-1e12, high=1e12)
        _number(end, "cue end", low=start, high=1e12)
        if not (isinstance(text, str) and len(text) <= 10_000 and isinstance(source, str) and len(source) <= 64
                and (language is None or (isinstance(language, str) and len(language) <= 32))):
            raise JobError("a cue of the job has no text, source or language as the memory keeps them")


def checkpoint_name(value: Any) -> str | None:
    """A job's speech recognition checkpoint (a hub id or directory the producer named), or None."""
    if value is None or (isinstance(value, str) and 0 < len(value) <= 1024 and "\0" not in value):
        return value
    raise ValueError("the job's speech recognition checkpoint is not a name")


def check_frames_header(data: bytes | None, meta: dict[str, Any]) -> None:
    """JobError unless `data` starts like a frame clip of this job (magic, T×H×W consistent with its
    timestamps and sampling, within MAX_FRAME_BYTES), read before anything is decompressed."""
    if not data or len(data) < 16 or data[:4] not in _MAGICS:
        raise JobError("the job's frames are not a Tempo frame clip")
    t, h, w = (int(x) for x in np.frombuffer(data[4:16], dtype="<u4"))
    edge = int(meta["spec"]["sampling"]["max_edge"])
    if t != len(meta["ts"]):
        raise JobError(f"the job's frame header claims {t} frames for {len(meta['ts'])} timestamps")
    # target_size rounds each side to a multiple of 16: the longer one is at most max_edge + 8.
    if not (1 <= h <= edge + 16 and 1 <= w <= edge + 16):
        raise JobError(f"the job's frame header claims {w}×{h} frames, larger than its max edge {edge}")
    if t * h * w * 3 > MAX_FRAME_BYTES:
        raise JobError(f"the job's frame header claims {t}×{h}×{w} frames ({t * h * w * 3} bytes), over the limit")


def check_job(meta: Any, frames: bytes | None) -> None:
    """Every field of a job (see the module doc); JobError in one sentence for the first one wrong."""
    check_meta(meta)
    if not meta.get("skip"):
        check_frames_header(frames, meta)
