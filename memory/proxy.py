"""Proxy clips: the frames the compressor saw for a live segment, kept as a small H.264 clip.

A live source cannot be re-read, so to recompress a segment for a new question we keep exactly the
frames the compressor was fed at ingest: the sampled frames after the compressor's own resize
(`compressor_input`; with the release's resize chain, 512×256 for a 16:9 source), never a
downscaled copy. They are encoded with libx264 (yuv420p, one GOP: the later frames are P-frames,
nearly free on a fixed camera) at a constant quality, the CRF, and decode back at that very size, so
recompression from a proxy differs from ingest only by the codec.

Quality. `ProxySettings.crf` (`tempo ingest --proxy-quality`) is x264's constant-quality target.
The default, 30, was chosen with bench/proxy.py (README "Proxy clips"): it is the finest CRF at
which FFmpeg's test pattern, the most detailed noise-free content measured, stays under the byte cap
on average (CRF 27 would not), and it clears the luma PSNR targets against the compressor's input
(≥ 40 dB on the test pattern, ≥ 37 dB on mandelbrot) by 2 to 4 dB, where CRF 33 would leave
0.6 dB. The cap, not the CRF, is what bounds storage: a busy scene that would exceed
`max_bytes` is re-encoded at the finest coarser CRF that fits, found in a few encodes by a rate
model (x264's rate roughly halves per +6 CRF; each encode refines the slope). The CRF a clip ends
at is in its header (`proxy_info`): quality is recorded per segment. x264 runs tuned for PSNR
(psy and aq off, B-frames inside the one GOP) and a clip under the cap that measures below
`target_db` is re-encoded finer as far as the cap allows (`_spend_cap`): bench/proxy.py's sweep of
codecs and settings, README "Proxy clips", is where these were chosen.

Format. The bytes are a 16-byte header + a raw Annex-B H.264 stream (no container: nothing to spend
on boxes):

    magic (4 bytes) | T | H | W | coded h | coded w | crf      (uint16 each, little-endian)

- `TPX2` (this version): H × W is the size of the stored frames, which decode to exactly that
  size; coded h × w is H × W rounded up to even sides (yuv420p), padded by repeating the edge.
- `TPX1` (streams ingested before): the clip was downscaled to a 256-px longer edge and decodes by
  scaling back up to H × W, the segment's sampled frame size. Still decoded, unchanged.

Tiers. A proxy is self-describing bytes: its header says how many frames of what size it holds and
at what quality, and nothing else in the segment's record is needed to decode it. Moving proxies to
a cold tier (disk or object storage, the scale-out issue) therefore only changes where those bytes
are fetched from; `memory.replay.load_segments` is the one reader (`decode_proxy`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
from tempo.inputs import MAX_CRF  # libx264's coarsest CRF: one definition for the CLI and the codec
from tempo.streaming.segment import is_live

_MAGIC_V1 = b"TPX1"
_MAGIC = b"TPX2"
_HEADER = struct.Struct("<4sHHHHHH")  # magic, T, H, W, coded h, coded w, crf
# Streams ingested before TPX2 (and before proxy settings were recorded) used these.
LEGACY_SETTINGS: dict[str, Any] = {"format": 1, "max_side": 256, "crf": 32, "max_bytes": 24_000}


@dataclass(frozen=True)
class ProxySettings:
    """How proxies are encoded (see the module doc for how the defaults were chosen)."""

    crf: int = 30  # libx264 constant rate factor: 0 = lossless … 51 = coarsest
    preset: str = "medium"
    # Per 8-frame segment; a clip above it is re-encoded coarser (its header records the CRF it
    # ended at). Sized so a live source stays within 64 MiB of Redis memory per video-hour whatever
    # it shows: 900 segments × (33,312 token + 1,536 embedding + ~150 metadata + 28,672 proxy bytes)
    # = 54.6 MiB of payload, ~63.7 MiB with Redis's allocation overhead (bench/storage.py). None: no cap.
    max_bytes: int | None = 28 * 1024
    # Tuned for fidelity (bench/proxy.py): psycho-visual optimisations and adaptive quantisation off
    # (they trade PSNR for perceived sharpness), up to 3 B-frames inside the segment's one GOP.
    x264_params: str = "psy=0:aq-mode=0"
    bframes: int = 3
    # Per-segment rate control: a clip whose luma PSNR (against the frames it holds) falls below this
    # at `crf` is re-encoded finer, up to FINER_STEPS CRF steps, as far as the byte cap allows; None: off.
    target_db: float | None = 40.0

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= MAX_CRF:
            raise ValueError(f"proxy quality (CRF) must be an integer from 0 to {MAX_CRF}, got {self.crf}")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ValueError(f"proxy byte cap must be positive, got {self.max_bytes}")
        if not 0 <= self.bframes <= 16:
            raise ValueError(f"proxy B-frames must lie in [0, 16], got {self.bframes}")
        if self.target_db is not None and not 10.0 <= self.target_db <= 100.0:
            raise ValueError(f"proxy target PSNR must lie in [10, 100] dB, got {self.target_db}")
        if any(c in self.x264_params for c in "\n\r\0"):
            raise ValueError("proxy x264 parameters must be one line")

    def to_dict(self) -> dict[str, Any]:
        """As recorded in a stream's settings (`tempo streams --json`)."""
        return {"format": 2, "size": "compressor input", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ProxySettings | None:
        """The settings a stream recorded; None when it recorded none or an older format."""
        if not data or data.get("format") != 2:
            return None
        # Settings recorded before the fidelity tuning lack its keys: such a stream keeps plain x264.
        return cls(crf=int(data["crf"]), preset=str(data["preset"]), max_bytes=data.get("max_bytes"),
                   x264_params=str(data.get("x264_params", "")), bframes=int(data.get("bframes", 0)),
                   target_db=data.get("target_db"))


def stream_proxy_settings(source: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a stream's `tempo streams --json` entry says about its proxies: None for a file source
    (its segments are re-read from the file), the recorded settings, else the pre-TPX2 defaults."""
    if not is_live(source):
        return None
    recorded = (extra or {}).get("proxy")
    return dict(recorded) if recorded else dict(LEGACY_SETTINGS)


class FrameProcessor(Protocol):
    """What a proxy needs of the compressor's processor (tempo.models.processor.SegmentVideoProcessor):
    how it resizes frames. Storage holds no model code; the processor is handed in."""

    def compressor_frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 → (T, h, w, 3) uint8: the frames the compressor is fed for them."""
        ...


def compressor_input(frames: np.ndarray, processor: FrameProcessor) -> np.ndarray:
    """(T, H, W, 3) uint8 sampled frames → (T, h, w, 3) uint8: what the compressor is fed for them.

    The one place the proxy asks how the compressor resizes: the release's chain in models.processor,
    for the compressor's own patch and merge sizes.
    """
    return processor.compressor_frames(frames)


def encode_proxy(
    frames: np.ndarray,
    settings: ProxySettings | None = None,
    *,
    processor: FrameProcessor | None = None,
) -> bytes:
    """(T, H, W, 3) uint8 RGB → proxy clip bytes (TPX2), at most `settings.max_bytes` when reachable.

    With `processor` (the compressor's), the clip holds `compressor_input(frames, processor)`, the
    frames the compressor is fed; without, the frames as given.
    """
    settings = settings or ProxySettings()
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T ≥ 1, got shape {frames.shape}")
    if processor is not None:
        fed = compressor_input(frames, processor)
        # Recompression feeds the decoded frames to the compressor, which runs its resize chain on them
        # again: keep its input where that is the identity (every usual camera size); otherwise (a
        # chain that moves its own output, e.g. small or very wide sources) keep the sampled frames,
        # which it resizes exactly as at ingest. Either way only the codec stands between the two.
        if np.array_equal(compressor_input(fed, processor), fed):
            frames = fed
    clip = _encode(frames, settings.crf, settings)
    cap = settings.max_bytes
    if cap is not None and len(clip) > cap:
        return _fit_under_cap(frames, settings.crf, len(clip), cap, settings)
    if settings.target_db is not None and settings.crf > 0:
        return _spend_cap(frames, clip, settings)
    return clip


# How many CRF steps finer than the setting `target_db` may take a segment (≈ 4× the bytes).
FINER_STEPS = 12


def _spend_cap(frames: np.ndarray, clip: bytes, settings: ProxySettings) -> bytes:
    """Per-segment rate control: `clip` (at settings.crf, within the cap) if it reaches the target PSNR;
    else the coarsest finer CRF that reaches it within the cap, or failing that the finest that fits.

    A binary search over the FINER_STEPS CRFs below the setting: a few encodes, only for segments
    whose content needs them (a still or smooth scene stops at the first).
    """
    assert settings.target_db is not None
    if luma_psnr(frames, decode_proxy(clip)) >= settings.target_db:
        return clip
    cap = settings.max_bytes
    low, high = max(0, settings.crf - FINER_STEPS), settings.crf - 1
    finest_fit = clip  # the finest CRF known to fit (larger CRF indices are coarser)
    reaching: bytes | None = None  # the coarsest CRF known to reach the target within the cap
    while low <= high:
        crf = (low + high) // 2
        trial = _encode(frames, crf, settings)
        if cap is not None and len(trial) > cap:
            low = crf + 1  # finer ones would not fit either
            continue
        finest_fit = trial if proxy_info(trial).crf < proxy_info(finest_fit).crf else finest_fit
        if luma_psnr(frames, decode_proxy(trial)) >= settings.target_db:
            reaching, low = trial, crf + 1  # look for a coarser one that reaches it too
        else:
            high = crf - 1
    return reaching if reaching is not None else finest_fit


def _fit_under_cap(frames: np.ndarray, crf: int, size: int, cap: int, settings: ProxySettings) -> bytes:
    """The finest CRF above `crf` (whose clip took `size` > `cap` bytes) that fits, in a few encodes.

    Each guess steps to the CRF a rate model predicts to fit: x264's rate roughly halves per +6 CRF,
    and each encode refines that slope (busy content often shrinks faster). Returns the coarsest
    try (CRF 51 at worst) when nothing fits.
    """
    over = (crf, size)  # the coarsest CRF known to be too big, and its bytes
    fit: tuple[int, bytes] | None = None  # the finest CRF known to fit, and its clip
    per_halving = 6.0  # CRF steps per halving of the bytes
    for _ in range(4):
        upper = fit[0] - 1 if fit is not None else MAX_CRF
        guess = min(upper, over[0] + max(1, math.ceil(per_halving * math.log2(over[1] / cap))))
        if guess <= over[0]:
            break  # the finest fitting CRF is found: the one right above a known-too-big one
        clip = _encode(frames, guess, settings)
        if len(clip) < over[1]:
            per_halving = (guess - over[0]) / math.log2(over[1] / len(clip))
        if len(clip) <= cap:
            fit = (guess, clip)
        else:
            over = (guess, len(clip))
    if fit is not None:
        return fit[1]
    return clip if over[0] >= MAX_CRF else _encode(frames, MAX_CRF, settings)


def _encode(frames: np.ndarray, crf: int, settings: ProxySettings) -> bytes:
    t, height, width, _ = frames.shape
    ch, cw = height + height % 2, width + width % 2  # yuv420p needs even sides
    if (ch, cw) != (height, width):
        frames = np.pad(frames, ((0, 0), (0, ch - height), (0, cw - width), (0, 0)), mode="edge")
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = cw, ch, "yuv420p"
    codec.time_base = Fraction(1, 2)  # nominal; real times live in the segment metadata
    codec.gop_size = max(t, 1)
    params = ":".join(p for p in ("log-level=none", settings.x264_params) if p)
    codec.options = {
        "crf": str(crf),
        "preset": settings.preset,
        "bf": str(settings.bframes),  # within the one GOP: the decoder reorders, `decode_proxy` flushes
        "threads": "1",
        "x264-params": params,
    }
    payload = bytearray()
    for i in range(t):
        frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        for packet in codec.encode(frame):
            payload += bytes(packet)
    for packet in codec.encode(None):
        payload += bytes(packet)
    return _HEADER.pack(_MAGIC, t, height, width, ch, cw, crf) + bytes(payload)


@dataclass(frozen=True)
class ProxyInfo:
    """What a proxy's header says."""

    version: int  # 1: downscaled (TPX1), 2: the compressor's frames (TPX2)
    frames: int  # T
    height: int  # px, of the decoded frames
    width: int  # px
    coded_height: int  # px, of the H.264 stream
    coded_width: int  # px
    crf: int  # the quality the clip was encoded at (after any re-encode for the byte cap)


def proxy_info(data: bytes) -> ProxyInfo:
    """The header of a proxy clip (either version); ValueError when `data` is not one."""
    if len(data) < _HEADER.size:
        raise ValueError("not a Tempo proxy clip")
    magic, t, height, width, ch, cw, crf = _HEADER.unpack_from(data)
    if magic not in (_MAGIC, _MAGIC_V1):
        raise ValueError("not a Tempo proxy clip")
    return ProxyInfo(2 if magic == _MAGIC else 1, t, height, width, ch, cw, crf)


def proxy_shape(data: bytes) -> tuple[int, int, int]:
    """(T, H, W) of the frames a proxy decodes to."""
    info = proxy_info(data)
    return info.frames, info.height, info.width


def decode_proxy(data: bytes) -> np.ndarray:
    """Proxy clip bytes → (T, H, W, 3) uint8 RGB: the stored frames (TPX2), or a TPX1 clip scaled
    back up to its segment's frame size."""
    info = proxy_info(data)
    codec = av.CodecContext.create("h264", "r")
    out: list[np.ndarray] = []
    # parse(None) flushes the parser's last buffered packet; the trailing None flushes the decoder.
    packets = [*codec.parse(data[_HEADER.size :]), *codec.parse(None), None]
    for packet in packets:
        for frame in codec.decode(packet):
            if info.version == 1:
                rgb = frame.reformat(width=info.width, height=info.height, format="rgb24", interpolation="BILINEAR")
                out.append(rgb.to_ndarray())
            else:
                out.append(frame.to_ndarray(format="rgb24")[: info.height, : info.width])
    if len(out) != info.frames:
        raise ValueError(f"proxy clip decoded to {len(out)} frames, expected {info.frames}")
    return np.ascontiguousarray(np.stack(out))  # (T, H, W, 3)


def luma(frames: np.ndarray) -> np.ndarray:
    """(…, 3) uint8 RGB → (…) float64 luma Y = 0.299 R + 0.587 G + 0.114 B (BT.601, full range)."""
    return np.asarray(frames, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def luma_psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of the luma of `test` against `reference` (same shape, uint8 RGB), from the MSE
    over all frames and pixels (how codecs report it; RGB PSNR would be capped by 4:2:0 chroma)."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    mse = float(np.mean((luma(reference) - luma(test)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
