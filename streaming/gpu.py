"""Decoding on the GPU (NVDEC through FFmpeg's CUDA hwaccel), frames sampled and resized there.

`--decode auto|cpu|gpu` (`SamplingConfig.decode`). "gpu" opens a file with PyAV's hardware
acceleration (device type cuda, frames kept in GPU memory: `HWAccel(is_hw_owned=True)`); each
sampled frame's NV12 planes are taken by torch through DLPack without a copy, converted to RGB and
resized on the GPU (bicubic, antialiased), and only the small output frame is copied to the host.
"auto" is "gpu" when FFmpeg has the cuda hwaccel and torch sees a CUDA device, else "cpu". When the
GPU path is asked for and cannot run, one line says why and the CPU decodes (`choose_decoder`).

Not bit-exact. The CPU path reproduces the release's resize exactly (swscale RGB, then PIL bicubic);
here the YUV→RGB matrix and torch's bicubic kernel differ from those in rounding and in the
antialiasing filter, so pixels differ by a few levels (measured by bench/gpu_check.py and on the CPU
by tests/streaming/test_gpu_decode.py; README "Decoding on the GPU"). `--decode cpu` keeps exactness.
The same conversion runs on the CPU (tensors on the CPU) so its difference can be measured anywhere.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any, Literal

import av
import numpy as np

log = logging.getLogger("tempo.streaming")

DecodeMode = Literal["auto", "cpu", "gpu"]
DECODE_MODES = ("auto", "cpu", "gpu")


def gpu_unavailable_reason() -> str | None:
    """None when GPU decoding can run here; else one short reason why not."""
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


def choose_decoder(mode: str) -> tuple[str, str | None]:
    """("cpu" | "gpu", notice): the decoder for `mode`, and the one-line notice when "gpu" was asked
    for and cannot run (auto on a machine without a GPU says nothing: the CPU is what it means there)."""
    if mode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, not {mode!r}")
    if mode == "cpu":
        return "cpu", None
    reason = gpu_unavailable_reason()
    if reason is None:
        return "gpu", None
    return "cpu", (f"GPU decoding unavailable ({reason}); decoding on the CPU" if mode == "gpu" else None)


def cuda_hwaccel() -> Any:
    """PyAV's CUDA hwaccel with decoded frames left in GPU memory (no software fallback: a stream
    NVDEC cannot decode fails to open, and the caller falls back to the CPU)."""
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type="cuda", allow_software_fallback=False, is_hw_owned=True)


def _yuv_matrix(frame: av.VideoFrame) -> tuple[float, float, bool]:
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

    A GPU-owned frame (NVDEC) is read through DLPack in place; a frame in host memory (software
    decoding, or measuring on the CPU) is converted to NV12 by swscale first.
    """

    def __init__(self, size: tuple[int, int], device: str = "cuda") -> None:
        self.size = size
        self.device = device

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        import torch

        kr, kb, full = _yuv_matrix(frame)
        if frame.format.name == "cuda":  # NVDEC's NV12 in GPU memory
            y, uv = torch.from_dlpack(frame.planes[0]), torch.from_dlpack(frame.planes[1])
        else:
            nv12 = frame if frame.format.name == "nv12" else frame.reformat(format="nv12")
            planes = nv12.to_ndarray()  # (H * 3/2, W) uint8: luma rows, then interleaved chroma rows
            height = nv12.height
            y = torch.from_numpy(planes[:height]).to(self.device)
            uv = torch.from_numpy(np.ascontiguousarray(planes[height:])).to(self.device)
        y = y[: frame.height, : frame.width]
        uv = uv[: (frame.height + 1) // 2, : 2 * ((frame.width + 1) // 2)]
        rgb = nv12_to_rgb_resized(y, uv, self.size, kr=kr, kb=kb, full=full)
        return rgb.cpu().numpy()
