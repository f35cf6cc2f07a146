"""--decode auto|cpu|gpu: which decoder runs, the fallback to the CPU, and how far the GPU path's
conversion (torch NV12 → RGB + bicubic antialiased resize, run here on the CPU) is from the release's
exact one (swscale RGB + PIL bicubic)."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.convert import FrameConverter
from tempo.streaming.gpu import TorchFrameConverter, choose_decoder, gpu_unavailable_reason, resize_rgb_torch
from tempo.streaming.sampling import resize_frame
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main

NO_GPU = gpu_unavailable_reason()
needs_no_gpu = pytest.mark.skipif(NO_GPU is None, reason="this machine can decode on the GPU")


@pytest.fixture(scope="module")
def hd_mp4(videos: Path) -> Path:
    return write_test_video(videos / "hd.mp4", duration=2.0, fps=30.0, size=(1280, 720), bframes=2, keyint=30,
                            texture=True)


def test_cpu_is_always_the_cpu_and_unknown_modes_are_refused() -> None:
    assert choose_decoder("cpu") == ("cpu", None)
    with pytest.raises(ValueError, match="auto, cpu, gpu"):
        choose_decoder("tpu")
    with pytest.raises(ValueError, match="decode must be"):
        SamplingConfig(decode="tpu")


@needs_no_gpu
def test_without_a_gpu_auto_means_the_cpu_silently_and_gpu_falls_back_with_a_reason() -> None:
    assert choose_decoder("auto") == ("cpu", None)
    decoder, notice = choose_decoder("gpu")
    assert decoder == "cpu"
    assert notice is not None and NO_GPU in notice and "\n" not in notice


@needs_no_gpu
def test_a_gpu_ingest_falls_back_to_the_exact_cpu_path_with_one_line(
    h264_mp4: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream = iter_segments(str(h264_mp4), config=SamplingConfig(decode="gpu"))
        gpu = list(stream)
    notices = [r.getMessage() for r in caplog.records if "GPU decoding unavailable" in r.getMessage()]
    assert len(notices) == 1
    assert stream.stats.decoder == "cpu"
    cpu = list(iter_segments(str(h264_mp4), config=SamplingConfig(decode="cpu")))
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(gpu, cpu, strict=True))


@needs_no_gpu
def test_the_segments_command_says_it_falls_back_and_goes_on(
    h264_mp4: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        assert main(["segments", str(h264_mp4), "--decode", "gpu"]) == 0
    assert sum("GPU decoding unavailable" in r.getMessage() for r in caplog.records) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) >= 3


def test_a_bad_decode_value_is_one_line(h264_mp4: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["segments", str(h264_mp4), "--decode", "fast"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err


def test_the_torch_resize_is_close_to_pil_but_not_exact(hd_mp4: Path) -> None:
    """The measured difference the README states: the resize alone, and the whole GPU conversion."""
    with av.open(str(hd_mp4)) as container:
        frames = [f for _, f in zip(range(6), container.decode(video=0), strict=False)]
    exact = FrameConverter((512, 288))
    torch_path = TorchFrameConverter((512, 288), device="cpu")
    for frame in frames:
        rgb = frame.to_ndarray(format="rgb24")
        pil = resize_frame(rgb, (512, 288))
        resized = resize_rgb_torch(rgb, (512, 288))
        diff = np.abs(pil.astype(int) - resized.astype(int))
        assert resized.shape == pil.shape and diff.mean() < 1.0 and diff.max() <= 32
        whole = np.abs(exact(frame).astype(int) - torch_path(frame).astype(int))
        assert whole.mean() < 2.0 and np.percentile(whole, 99) <= 12


def test_the_stream_records_the_decoder_that_ran(live_memory, tmp_path: Path) -> None:
    from tempo.service import TempoService

    video = write_test_video(tmp_path / "short.mp4", duration=4.0, fps=10, size=(96, 64))
    service = TempoService(model=str(live_memory.model_dir), redis_url=live_memory.url, home=tmp_path / "home")
    service.ingest(str(video), "decoded", sampling=SamplingConfig(decode="gpu"), progress=False)
    try:
        expected = choose_decoder("gpu")[0]  # "cpu" here; "gpu" or "gpu-nvcodec" on a GPU machine
        assert service.stream("decoded").settings.extra["decoder"] == expected
    finally:
        service.store.delete_stream("decoded")
