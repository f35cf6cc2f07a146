"""Where and how a model family runs: the torch device, the dtype and the attention kernel.

Shared by every family's loader: `pick_device` refuses a device this machine lacks in one sentence,
`pick_dtype` chooses bfloat16 on CUDA and float32 elsewhere, `attention_implementation` and
`device_map_for` pick what transformers' `from_pretrained` is given.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

import torch
from tempo.errors import DeviceUnavailableError


def pick_device(device: str | torch.device | None) -> torch.device:
    """`device`, else cuda when available, else cpu; DeviceUnavailableError for one this machine lacks."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(f"{str(device)!r} is not a torch device (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cpu":
        return dev
    backend = {"cuda": torch.cuda, "xpu": getattr(torch, "xpu", None), "mps": torch.backends.mps}.get(dev.type)
    count = 0
    if backend is not None and backend.is_available():
        count = backend.device_count() if hasattr(backend, "device_count") else 1
    if count == 0:
        raise DeviceUnavailableError(f"device {str(device)!r} is not available: this machine has no {dev.type} device")
    if dev.index is not None and dev.index >= count:
        raise DeviceUnavailableError(
            f"device {str(device)!r} is not available: this machine has {count} {dev.type} device(s), "
            f"{dev.type}:0 to {dev.type}:{count - 1}"
        )
    return dev


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}") from None


def flash_attn_imports() -> bool:
    """Whether `flash_attn` (the `gpu` extra; `pip install flash-attn --no-build-isolation`) imports:
    an install whose CUDA build does not match torch is found but fails to import."""
    if importlib.util.find_spec("flash_attn") is None:
        return False
    try:
        importlib.import_module("flash_attn")
    except Exception:  # ImportError, or an OSError/RuntimeError from a mismatched CUDA build
        return False
    return True


def attention_implementation(device: torch.device, *, flash_available: Callable[[], bool] = flash_attn_imports) -> str:
    """"flash_attention_2" on a CUDA device when flash-attn imports, else "sdpa" (torch's own)."""
    if device.type == "cuda" and flash_available():
        return "flash_attention_2"
    return "sdpa"


def device_map_for(device: torch.device, *, accelerate_available: Callable[[], bool] | None = None) -> dict | None:
    """`device_map` for transformers' from_pretrained: weights loaded straight onto an accelerator
    when `accelerate` (the `gpu` extra) is installed, which transformers needs for it; else None
    (loaded on the CPU, then moved)."""
    if accelerate_available is None:
        accelerate_available = lambda: importlib.util.find_spec("accelerate") is not None  # noqa: E731
    if device.type == "cpu" or not accelerate_available():
        return None
    return {"": str(device)}
