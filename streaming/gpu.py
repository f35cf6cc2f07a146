"""Decoding on the GPU (NVDEC), frames sampled and resized there.

`--decode auto|cpu|gpu` (`SamplingConfig.decode`). "gpu" decodes a file with the first GPU decoder
this machine has, in this order (`GPU_DECODERS`):

1. "gpu": FFmpeg's CUDA hwaccel through PyAV (device type cuda, frames kept in GPU memory:
   `HWAccel(is_hw_owned=True)`), when the installed FFmpeg has it (PyAV 18.1's wheel lists the
   cuda device type; an FFmpeg built without it, or a file it cannot open, goes on to 2.);
2. "gpu-nvcodec": NVIDIA's PyNvVideoCodec (the `nvdec` extra, streaming/nvcodec.py), when it
   imports and a CUDA device is visible.

Either way each sampled frame's NV12 planes reach torch through DLPack, are converted to RGB and
resized on the GPU (bicubic, antialiased), and only the small output frame is copied to the host.
"auto" is "gpu" when one of them can run, else "cpu". When "gpu" is asked for and none can run, one
line names every reason and the CPU decodes (`choose_decoder`); a file neither GPU decoder can
open falls back the same way (`open_on_gpu`). The decoder that ran is recorded in the stream's
settings (`extra.decoder`: "cpu", "gpu" or "gpu-nvcodec"; "gpu" keeps the name streams recorded
before PyNvVideoCodec was supported).

Not bit-exact. The CPU path reproduces the release's resize exactly (swscale RGB, then PIL bicubic);
here the YUV→RGB matrix and torch's bicubic kernel differ from those in rounding and in the
antialiasing filter, so pixels differ by a few levels (measured by bench/gpu_check.py and on the CPU
by tests/streaming/test_gpu_decode.py; README "Decoding on the GPU"). `--decode cpu` keeps exactness.
The same conversion runs on the CPU (tensors on the CPU) so its difference can be measured anywhere.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np
from tempo.streaming.errors import StreamingError
from tempo.streaming.sampling import SamplingConfig
from tempo.streaming.sources import ResolvedSource

log = logging.getLogger("tempo.streaming")

DecodeMode = Literal["auto", "cpu", "gpu"]
DECODE_MODES = ("auto", "cpu", "gpu")


# The GPU decoders `--decode gpu|auto` tries, in this order (the names recorded in `extra.decoder`).
GPU_DECODERS: tuple[str, ...] = ("gpu", "gpu-nvcodec")


def hwaccel_unavailable_reason() -> str | None:
    """None when FFmpeg's CUDA hwaccel (through PyAV) can decode here; else one short reason why not."""
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:
        return "this PyAV has no hardware acceleration"
    if "cuda" not in hwdevices_available():
        return "this FFmpeg has no CUDA hwaccel"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def gpu_decoders() -> tuple[list[str], list[str]]:
    """(the GPU decoders that can run here, in `GPU_DECODERS` order; the reasons the others cannot,
    without repeats)."""
    from tempo.streaming.nvcodec import nvcodec_unavailable_reason

    probes = {"gpu": hwaccel_unavailable_reason, "gpu-nvcodec": nvcodec_unavailable_reason}
    usable: list[str] = []
    reasons: list[str] = []
    for name in GPU_DECODERS:
        reason = probes[name]()
        if reason is None:
            usable.append(name)
        elif reason not in reasons:
            reasons.append(reason)
    return usable, reasons


def gpu_unavailable_reason() -> str | None:
    """None when some GPU decoder can run here; else every reason why none can, in one phrase
    ("this FFmpeg has no CUDA hwaccel; PyNvVideoCodec is not installed")."""
    usable, reasons = gpu_decoders()
    return None if usable else "; ".join(reasons)


def choose_decoder(mode: str) -> tuple[str, str | None]:
    """("cpu" | "gpu" | "gpu-nvcodec", notice): the decoder for `mode` (the first GPU decoder that
    can run, for "gpu" and "auto"), and the one-line notice when "gpu" was asked for and none can
    (auto on a machine without a GPU says nothing: the CPU is what it means there)."""
    if mode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, not {mode!r}")
    if mode == "cpu":
        return "cpu", None
    usable, reasons = gpu_decoders()
    if usable:
        return usable[0], None
    return "cpu", (f"GPU decoding unavailable ({'; '.join(reasons)}); decoding on the CPU" if mode == "gpu" else None)


def uncovered_notice(mode: str, *, kind: str, live: bool, sampling: str) -> str | None:
    """The one line for a source the GPU path does not cover, when "gpu" was asked for: it decodes
    local files in "stream" sampling; live sources, standard input, network files and the release's
    whole-file sampling decode on the CPU."""
    if mode != "gpu":
        return None
    if sampling != "stream":
        what = "the release's whole-file sampling"
    elif live:
        what = "a live source"
    elif kind == "stdin":
        what = "standard input"
    elif kind != "file":
        what = "a network file"
    else:
        return None
    return f"GPU decoding covers local files only; decoding {what} on the CPU"


def cuda_hwaccel() -> Any:
    """PyAV's CUDA hwaccel with decoded frames left in GPU memory (no software fallback: a stream
    NVDEC cannot decode fails to open, and the caller falls back to the CPU)."""
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type="cuda", allow_software_fallback=False, is_hw_owned=True)


@dataclass
class GpuOpened:
    """A file opened on the GPU: `decoder` is "gpu" (read `container`/`stream`, FFmpeg's hwaccel) or
    "gpu-nvcodec" (read `nvdec`, PyNvVideoCodec; PyAV's container stays the source of the file's facts)."""

    decoder: str
    container: Any = None
    stream: Any = None
    nvdec: Any = None  # nvcodec.NvdecFile, its first frame decoded


def open_on_gpu(resolved: ResolvedSource, config: SamplingConfig, stream: av.VideoStream) -> GpuOpened | None:
    """The file opened by the first GPU decoder that can decode it (`GPU_DECODERS` order), or None
    when `config.decode` chooses the CPU or none can: then one line says why ("gpu" asked for) and
    the CPU decodes. `stream` is the file's video stream as the CPU path opened it (PyAV)."""
    from tempo.streaming.nvcodec import NvdecFile, NvdecUnusable
    from tempo.streaming.sources import open_source

    decoder, notice = choose_decoder(config.decode)
    failures: list[str] = []
    for name in gpu_decoders()[0] if decoder != "cpu" else []:
        try:
            if name == "gpu-nvcodec":
                return GpuOpened(name, nvdec=NvdecFile(resolved.uri, stream).open())
            # A first frame decoded on a separate container (the reading one's decoder must not be
            # opened yet: its threads are set before it opens).
            probe, probe_stream = open_source(resolved, connect_timeout=config.connect_timeout,
                                              read_timeout=config.read_timeout, hwaccel=cuda_hwaccel())
            try:
                first = next(probe.decode(probe_stream), None)
                if first is None or first.format.name != "cuda":
                    raise RuntimeError("NVDEC does not decode this stream")
            finally:
                probe.close()
            container, hw_stream = open_source(resolved, connect_timeout=config.connect_timeout,
                                               read_timeout=config.read_timeout, hwaccel=cuda_hwaccel())
            return GpuOpened(name, container=container, stream=hw_stream)
        except (av.error.FFmpegError, StreamingError, NvdecUnusable, RuntimeError, ValueError) as exc:
            failures.append(f"{'PyNvVideoCodec' if name == 'gpu-nvcodec' else 'FFmpeg'}: {exc}")
            log.info("%s: %s cannot decode this file (%s)", resolved.original, name, exc)
    if failures:
        notice = f"GPU decoding unavailable for this file ({'; '.join(failures)}); decoding on the CPU"
    if notice:
        log.warning("%s: %s", resolved.original, notice)
    return None


def _yuv_matrix(frame: Any) -> tuple[float, float, bool]:
    """(Kr, Kb, full range) of the frame's colour space: BT.709 for HD, else BT.601 (as swscale
    assumes for unspecified SD), limited range unless the frame says full (JPEG) range."""
    space = getattr(frame, "colorspace", None)
    hd = frame.height >= 720
    if space in (1,):  # AVCOL_SPC_BT709
        hd = True
    elif space in (5, 6):  # BT470BG, SMPTE170M (BT.601)
        hd = False
    kr, kb = (0.2126, 0.0722) if hd else (0.299, 0.114)
    full = getattr(frame, "color_range", 0) == 2  # AVCOL_RANGE_JPEG
    return kr, kb, full


def nv12_to_rgb_resized(y: Any, uv: Any, size: tuple[int, int], *, kr: float, kb: float, full: bool) -> Any:
    """Torch NV12 planes → (H, W, 3) uint8 RGB tensor at size (width, height), on the planes' device.

    y: (H, W) uint8 luma; uv: (H/2, W) uint8 interleaved chroma. Chroma is upsampled bilinearly,
    the BT matrix applied in float32, then the frame resized with bicubic antialiasing (torch's
    `interpolate`; PIL's filter differs slightly) and rounded.
    """
    import torch
    import torch.nn.functional as F

    height, width = y.shape
    luma = y.float()
    chroma = uv.reshape(uv.shape[0], -1, 2).permute(2, 0, 1)[None].float()  # (1, 2, H/2, W/2)
    chroma = F.interpolate(chroma, size=(height, width), mode="bilinear", align_corners=False)[0]
    if full:
        luma, cb, cr = luma, chroma[0] - 128.0, chroma[1] - 128.0
    else:
        luma = (luma - 16.0) * (255.0 / 219.0)
        cb, cr = (chroma[0] - 128.0) * (255.0 / 224.0), (chroma[1] - 128.0) * (255.0 / 224.0)
    kg = 1.0 - kr - kb
    red = luma + 2.0 * (1.0 - kr) * cr
    blue = luma + 2.0 * (1.0 - kb) * cb
    green = luma - (2.0 * kb * (1.0 - kb) * cb + 2.0 * kr * (1.0 - kr) * cr) / kg
    rgb = torch.stack([red, green, blue])[None].clamp(0.0, 255.0)  # (1, 3, H, W)
    if (width, height) != tuple(size):
        rgb = F.interpolate(rgb, size=(size[1], size[0]), mode="bicubic", antialias=True, align_corners=False)
    return rgb[0].round().clamp(0.0, 255.0).to(torch.uint8).permute(1, 2, 0)


def resize_rgb_torch(rgb: np.ndarray, size: tuple[int, int], device: str = "cpu") -> np.ndarray:
    """(H, W, 3) uint8 → (size[1], size[0], 3) with torch's bicubic antialiased resize: the GPU path's
    resize alone, for measuring it against PIL's (`sampling.resize_frame`)."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float()
    out = F.interpolate(tensor, size=(size[1], size[0]), mode="bicubic", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class TorchFrameConverter:
    """Sampled frames → (H, W, 3) uint8 RGB numpy at `size`, converted and resized with torch.

    A GPU-owned frame is read in place: FFmpeg's hwaccel frame through DLPack, PyNvVideoCodec's
    (`nvcodec.NvFrame`) from the planes it holds. A frame in host memory (software decoding, or
    measuring on the CPU) is converted to NV12 by swscale first and moved to `device` (default: the
    GPU when torch sees one, else the CPU).
    """

    def __init__(self, size: tuple[int, int], device: str | None = None) -> None:
        self.size = size
        self.device = device

    def __call__(self, frame: Any) -> np.ndarray:
        import torch

        kr, kb, full = _yuv_matrix(frame)
        nv12_planes = getattr(frame, "nv12_planes", None)
        if nv12_planes is not None:  # PyNvVideoCodec: NV12 already on the GPU
            y, uv = nv12_planes()
        elif frame.format.name == "cuda":  # FFmpeg's NVDEC: NV12 in GPU memory
            y, uv = torch.from_dlpack(frame.planes[0]), torch.from_dlpack(frame.planes[1])
        else:
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            nv12 = frame if frame.format.name == "nv12" else frame.reformat(format="nv12")
            planes = nv12.to_ndarray()  # (H * 3/2, W) uint8: luma rows, then interleaved chroma rows
            height = nv12.height
            y = torch.from_numpy(planes[:height]).to(device)
            uv = torch.from_numpy(np.ascontiguousarray(planes[height:])).to(device)
        y = y[: frame.height, : frame.width]
        uv = uv[: (frame.height + 1) // 2, : 2 * ((frame.width + 1) // 2)]
        rgb = nv12_to_rgb_resized(y, uv, self.size, kr=kr, kb=kb, full=full)
        return rgb.cpu().numpy()
