"""--decode gpu|auto with NVIDIA's PyNvVideoCodec (streaming/nvcodec.py): which decoder is chosen
for each combination of what is missing, the one-line notices, and the glue that needs no GPU —
pts × time base → seconds, the sampling of the frames it yields, the torch conversion, the
fallbacks to the CPU.

PyNvVideoCodec cannot run without an NVIDIA GPU, so `FakeNvc` below is a STAND-IN for it, used
only where the real library would be: it mirrors the 2.x calls streaming/nvcodec.py makes
(CreateDemuxer → packets with pts; CreateDecoder → Decode(packet) → frames with `timestamp`,
`format` and DLPack NV12; an empty final packet flushes), and its frames are a real video decoded
by PyAV (pts from the file, NV12 pixels from FFmpeg's decoder), on the CPU. What runs on the GPU
itself (NVDEC, the CUDA copy, the speed) is checked by bench/gpu_check.sh on a GPU machine.
"""

from __future__ import annotations

import logging
import sys
import types
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from tempo.streaming import SamplingConfig, gpu, iter_segments, nvcodec
from tempo.streaming.gpu import choose_decoder, gpu_unavailable_reason, uncovered_notice
from tempo.streaming.nvcodec import NOPTS, nvcodec_unavailable_reason, pts_seconds
from tempo.streaming.synthetic import write_test_video

NO_FFMPEG = "this FFmpeg has no CUDA hwaccel"
NO_NVC = "PyNvVideoCodec is not installed"
NO_DEVICE = "no CUDA device is visible"


# ---------------------------------------------------------------------------------------------
# The stand-in for PyNvVideoCodec (see the module docstring)


class FakeNvc(types.ModuleType):
    """Stand-in for the PyNvVideoCodec module: real PyAV demuxing and decoding, the library's shapes.

    `fail_at_packet`: raise PyNvVCExceptionDecode when that packet (0-based) reaches Decode, as
    NVDEC does on a stream it gives up on part-way.
    """

    class PyNvVCExceptionDecode(Exception):
        pass

    class PyNvVCExceptionUnsupported(Exception):
        pass

    class Pixel_Format:  # the library's names, here and below
        NV12, P016, YUV444 = "Pixel_Format.NV12", "Pixel_Format.P016", "Pixel_Format.YUV444"

    NVDEC_CODECS = ("h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "mjpeg")

    def __init__(self) -> None:
        super().__init__("PyNvVideoCodec")
        # Module attributes, as the library's (its error classes are found by name).
        self.PyNvVCExceptionDecode = FakeNvc.PyNvVCExceptionDecode
        self.PyNvVCExceptionUnsupported = FakeNvc.PyNvVCExceptionUnsupported
        self.fail_at_packet: int | None = None
        self.decoded = 0  # frames handed out

    def CreateDemuxer(self, filename: str) -> Any:
        return _Demuxer(filename)

    def CreateDecoder(self, *, gpuid: int, codec: str, cudacontext: int, cudastream: int,
                      usedevicememory: bool) -> Any:
        if codec not in self.NVDEC_CODECS:
            raise self.PyNvVCExceptionUnsupported(f"codec {codec} is not supported by NVDEC")
        return _Decoder(self)


class _Packet:
    def __init__(self, packet: av.Packet | None) -> None:
        self.packet = packet
        self.bsl = packet.size if packet is not None else 0
        self.pts = packet.pts if packet is not None and packet.pts is not None else NOPTS


class _Demuxer:
    def __init__(self, filename: str) -> None:
        self.container = av.open(filename)
        self.stream = self.container.streams.video[0]

    def GetNvCodecId(self) -> str:
        return self.stream.codec_context.name

    def __iter__(self) -> Any:
        for packet in self.container.demux(self.stream):
            if packet.size:
                yield _Packet(packet)
        yield _Packet(None)  # the real demuxer's last packet is empty: it flushes the decoder


class _Frame:
    def __init__(self, nvc: FakeNvc, frame: av.VideoFrame) -> None:
        self.timestamp = frame.pts if frame.pts is not None else NOPTS
        self.format = {"yuv420p": nvc.Pixel_Format.NV12, "yuv444p": nvc.Pixel_Format.YUV444}.get(
            frame.format.name, nvc.Pixel_Format.P016)
        self._nv12 = torch.from_numpy(frame.reformat(format="nv12").to_ndarray())  # (H·3/2, W) uint8

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self._nv12.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Any:
        return self._nv12.__dlpack_device__()


class _Decoder:
    def __init__(self, nvc: FakeNvc) -> None:
        self.nvc, self.ctx, self.packets = nvc, None, 0

    def Decode(self, packet: _Packet) -> list[_Frame]:
        if self.nvc.fail_at_packet is not None and self.packets >= self.nvc.fail_at_packet:
            raise self.nvc.PyNvVCExceptionDecode("cuvidDecodePicture failed")
        self.packets += 1
        if packet.packet is not None:
            self.ctx = packet.packet.stream.codec_context
        frames = self.ctx.decode(packet.packet) if self.ctx is not None else []
        self.nvc.decoded += len(frames)
        return [_Frame(self.nvc, f) for f in frames]


@pytest.fixture()
def nvc(monkeypatch: pytest.MonkeyPatch) -> FakeNvc:
    """This machine as a GPU machine whose FFmpeg has no CUDA hwaccel but PyNvVideoCodec works."""
    fake = FakeNvc()
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", fake)
    monkeypatch.setattr(gpu, "hwaccel_unavailable_reason", lambda: NO_FFMPEG)
    monkeypatch.setattr(nvcodec, "nvcodec_unavailable_reason", lambda: None)
    return fake


def _notices(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------
# Selection


@pytest.mark.parametrize(("hwaccel", "nvcodec_reason", "expected"), [
    (None, None, "gpu"),  # FFmpeg's hwaccel comes first
    (None, NO_NVC, "gpu"),
    (NO_FFMPEG, None, "gpu-nvcodec"),  # a stock PyAV wheel on a GPU machine with the extra
    (NO_FFMPEG, NO_NVC, "cpu"),
])
def test_gpu_and_auto_take_the_first_gpu_decoder_that_can_run(
    monkeypatch: pytest.MonkeyPatch, hwaccel: str | None, nvcodec_reason: str | None, expected: str
) -> None:
    monkeypatch.setattr(gpu, "hwaccel_unavailable_reason", lambda: hwaccel)
    monkeypatch.setattr(nvcodec, "nvcodec_unavailable_reason", lambda: nvcodec_reason)
    assert choose_decoder("auto") == (expected, None)  # auto never says anything
    decoder, notice = choose_decoder("gpu")
    assert decoder == expected
    assert (notice is None) == (expected != "cpu")
    assert choose_decoder("cpu") == ("cpu", None)


def test_the_notice_names_every_reason_once_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "hwaccel_unavailable_reason", lambda: NO_FFMPEG)
    monkeypatch.setattr(nvcodec, "nvcodec_unavailable_reason", lambda: NO_NVC)
    assert choose_decoder("gpu") == (
        "cpu", f"GPU decoding unavailable ({NO_FFMPEG}; {NO_NVC}); decoding on the CPU")
    assert gpu_unavailable_reason() == f"{NO_FFMPEG}; {NO_NVC}"
    # Both missing the same thing: said once.
    monkeypatch.setattr(gpu, "hwaccel_unavailable_reason", lambda: NO_DEVICE)
    monkeypatch.setattr(nvcodec, "nvcodec_unavailable_reason", lambda: NO_DEVICE)
    assert choose_decoder("gpu")[1] == f"GPU decoding unavailable ({NO_DEVICE}); decoding on the CPU"


def test_the_probe_says_what_is_missing_for_pynvvideocodec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delitem(sys.modules, "PyNvVideoCodec", raising=False)
    if "PyNvVideoCodec" not in {m.name for m in __import__("pkgutil").iter_modules()}:
        assert nvcodec_unavailable_reason() == NO_NVC
    # Installed without its CUDA libraries: the import fails, and the reason says so.
    (tmp_path / "PyNvVideoCodec.py").write_text(
        "raise ImportError('libnvcuvid.so.1: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reason = nvcodec_unavailable_reason()
    assert reason is not None and reason.startswith("PyNvVideoCodec does not load (libnvcuvid.so.1")
    # It imports, but torch sees no GPU (this machine).
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", FakeNvc())
    if not torch.cuda.is_available():
        assert nvcodec_unavailable_reason() == NO_DEVICE


def test_only_local_files_in_stream_sampling_are_covered() -> None:
    assert uncovered_notice("gpu", kind="file", live=False, sampling="stream") is None
    assert uncovered_notice("auto", kind="stdin", live=False, sampling="stream") is None  # auto: silent
    for kind, live, sampling, what in [("network", True, "stream", "a live source"),
                                       ("device", True, "stream", "a live source"),
                                       ("stdin", False, "stream", "standard input"),
                                       ("network", False, "stream", "a network file"),
                                       ("file", False, "release", "the release's whole-file sampling")]:
        notice = uncovered_notice("gpu", kind=kind, live=live, sampling=sampling)
        assert notice == f"GPU decoding covers local files only; decoding {what} on the CPU"


def test_release_sampling_asked_on_the_gpu_says_so_once_and_decodes_exactly(
    h264_mp4: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream = iter_segments(str(h264_mp4), config=SamplingConfig(sampling="release", decode="gpu"))
        asked = list(stream)
    assert _notices(caplog) == [
        f"{h264_mp4}: GPU decoding covers local files only; decoding the release's whole-file sampling on the CPU"]
    exact = list(iter_segments(str(h264_mp4), config=SamplingConfig(sampling="release")))
    assert stream.stats.decoder == "cpu"
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(asked, exact, strict=True))


# ---------------------------------------------------------------------------------------------
# Times, sampling and pixels of the PyNvVideoCodec path


def test_pts_times_the_time_base_is_the_time() -> None:
    assert pts_seconds(1001, Fraction(1, 30000)) == 1001 / 30000
    assert pts_seconds(90_000 * 5 + 3003, Fraction(1, 90_000)) == pytest.approx(5.033366666666667, abs=1e-12)
    assert pts_seconds(-2002, Fraction(1, 60000)) == pytest.approx(-2002 / 60000)


def test_every_frame_nvdec_gives_has_its_pts_time_and_its_pixels(nvc: FakeNvc, vfr_mkv: Path) -> None:
    """NvdecFile alone: each frame's time is its pts × the stream's time base (variable frame rate),
    in presentation order, with the NV12 planes of that very frame."""
    from tempo.streaming.decode import IngestStats
    from tempo.streaming.nvcodec import NvdecFile

    with av.open(str(vfr_mkv)) as container:
        reference = [(f.time, f.to_ndarray(format="nv12")) for f in container.decode(video=0)]
    with av.open(str(vfr_mkv)) as container:
        stats = IngestStats()
        got = list(NvdecFile(str(vfr_mkv), container.streams.video[0]).open().frames(stats))
    assert [t for t, _ in got] == [t for t, _ in reference]
    assert stats.frames_decoded == len(reference) > 100
    steps = np.diff([t for t, _ in got])
    assert steps.min() < steps.max() / 2  # really variable: times are not frame counts
    for (_, frame), (_, nv12) in zip(got, reference, strict=True):
        height = frame.height
        np.testing.assert_array_equal(frame.y.numpy(), nv12[:height])
        np.testing.assert_array_equal(frame.uv.numpy(), nv12[height:])


def _compare_with_cpu(path: Path, config: SamplingConfig | None = None, **kwargs: Any) -> tuple[Any, list, list]:
    config = config or SamplingConfig()
    gpu_stream = iter_segments(str(path), config=SamplingConfig(**{**config.__dict__, "decode": "gpu"}), **kwargs)
    on_gpu = list(gpu_stream)
    on_cpu = list(iter_segments(str(path), config=SamplingConfig(**{**config.__dict__, "decode": "cpu"}), **kwargs))
    return gpu_stream, on_gpu, on_cpu


def _assert_same_sampling_close_pixels(on_gpu: list, on_cpu: list) -> None:
    assert len(on_gpu) == len(on_cpu) > 0
    for a, b in zip(on_gpu, on_cpu, strict=True):
        assert (a.index, a.start, a.end, a.first_frame_index) == (b.index, b.start, b.end, b.first_frame_index)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)  # the very frames, at their pts times
        assert a.frames.shape == b.frames.shape
        diff = np.abs(a.frames.astype(int) - b.frames.astype(int))
        assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 12  # torch's conversion, not PIL's (README)


def test_pynvvideocodec_frames_are_sampled_like_the_cpu_path(
    nvc: FakeNvc, h264_mp4: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """B-frames in MP4: NVDEC's display order and pts give the CPU path's slots, frame for frame."""
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream, on_gpu, on_cpu = _compare_with_cpu(h264_mp4)
    assert stream.stats.decoder == "gpu-nvcodec" and _notices(caplog) == []
    assert stream.stats.frames_decoded == nvc.decoded == 300  # every frame of the 10 s at 30 fps
    _assert_same_sampling_close_pixels(on_gpu, on_cpu)


def test_variable_frame_rate_times_come_from_pts_not_frame_counts(nvc: FakeNvc, vfr_mkv: Path) -> None:
    stream, on_gpu, on_cpu = _compare_with_cpu(vfr_mkv)
    assert stream.stats.decoder == "gpu-nvcodec"
    _assert_same_sampling_close_pixels(on_gpu, on_cpu)


def test_a_stream_clock_that_starts_late_is_measured_from_the_first_frame(nvc: FakeNvc, mpegts: Path) -> None:
    stream, on_gpu, on_cpu = _compare_with_cpu(mpegts)
    assert stream.stats.decoder == "gpu-nvcodec"
    assert on_gpu[0].start == 0.0
    _assert_same_sampling_close_pixels(on_gpu, on_cpu)


def test_a_resumed_run_gives_the_segments_a_full_run_gives(nvc: FakeNvc, h264_mp4: Path) -> None:
    config = SamplingConfig(decode="gpu")
    full = list(iter_segments(str(h264_mp4), config=config))
    resumed = list(iter_segments(str(h264_mp4), config=config, start_segment=1, start_slot=8))
    assert [s.index for s in resumed] == [s.index for s in full[1:]]
    for a, b in zip(resumed, full[1:], strict=True):
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        np.testing.assert_array_equal(a.frames, b.frames)


# ---------------------------------------------------------------------------------------------
# Files NVDEC cannot decode


@pytest.mark.parametrize(("name", "kwargs", "reason"), [
    ("lossless.mkv", {"codec": "ffv1"}, "codec ffv1 is not supported by NVDEC"),
    ("raw.h264", {"container": "h264"}, "its frames carry no timestamps"),
])
def test_a_file_nvdec_cannot_decode_falls_back_to_the_exact_cpu_path_with_one_line(
    nvc: FakeNvc, videos: Path, caplog: pytest.LogCaptureFixture, name: str, kwargs: dict, reason: str
) -> None:
    path = write_test_video(videos / name, duration=3.0, fps=10.0, size=(96, 64), **kwargs)
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream = iter_segments(str(path), config=SamplingConfig(decode="gpu"))
        asked = list(stream)
    assert _notices(caplog) == [
        f"{path}: GPU decoding unavailable for this file (PyNvVideoCodec: {reason}); decoding on the CPU"]
    assert stream.stats.decoder == "cpu"
    exact = list(iter_segments(str(path), config=SamplingConfig(decode="cpu")))
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(asked, exact, strict=True))


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, FFmpeg's hwaccel opens the file")
def test_a_file_ffmpegs_hwaccel_cannot_open_goes_to_pynvvideocodec(
    nvc: FakeNvc, h264_mp4: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg claims the hwaccel (as PyAV 18's wheel does) but cannot open the file with it (here: no
    GPU to open it on, a real failure of PyAV's CUDA device): the next GPU decoder takes the file."""
    monkeypatch.setattr(gpu, "hwaccel_unavailable_reason", lambda: None)
    assert choose_decoder("gpu") == ("gpu", None)
    with caplog.at_level(logging.INFO, logger="tempo.streaming"):
        stream = iter_segments(str(h264_mp4), config=SamplingConfig(decode="gpu"))
        segments = list(stream)
    assert stream.stats.decoder == "gpu-nvcodec" and len(segments) == 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("gpu cannot decode this file" in r.getMessage() for r in caplog.records)


def test_nvdec_failing_mid_file_hands_the_rest_to_the_cpu(
    nvc: FakeNvc, h264_mp4: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nvc.fail_at_packet = 130  # about 4.3 s into the 10 s file
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream, on_gpu, on_cpu = _compare_with_cpu(h264_mp4)
    notices = _notices(caplog)
    assert len(notices) == 1
    assert "NVDEC stopped after" in notices[0] and "cuvidDecodePicture failed" in notices[0]
    assert notices[0].endswith("decoding the rest on the CPU")
    assert stream.stats.decode_errors == 1
    _assert_same_sampling_close_pixels(on_gpu, on_cpu)  # no slot lost or repeated at the hand-over


def test_the_segments_command_decodes_with_pynvvideocodec_silently(
    nvc: FakeNvc, h264_mp4: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    from tempo.tools.cli import main

    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        assert main(["segments", str(h264_mp4), "--decode", "gpu"]) == 0
    assert _notices(caplog) == []
    assert len(capsys.readouterr().out.strip().splitlines()) >= 2
    assert nvc.decoded == 300


def test_the_stream_records_pynvvideocodec_as_its_decoder(nvc: FakeNvc, live_memory: Any, tmp_path: Path) -> None:
    from tempo.service import TempoService

    video = write_test_video(tmp_path / "short.mp4", duration=4.0, fps=10, size=(96, 64))
    service = TempoService(model=str(live_memory.model_dir), redis_url=live_memory.url, home=tmp_path / "home")
    service.ingest(str(video), "nvdecoded", sampling=SamplingConfig(decode="auto"), progress=False)
    try:
        assert service.stream("nvdecoded").settings.extra["decoder"] == "gpu-nvcodec"
    finally:
        service.store.delete_stream("nvdecoded")
