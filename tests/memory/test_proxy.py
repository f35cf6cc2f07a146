"""Proxy clips of live segments: the compressor's own frames, at a measured quality, within a byte cap.

The quality tests use real FFmpeg sources (1280×720, generated with imageio-ffmpeg's binary) read back
through the product's decode + sampling, and score the proxy against what the compressor is fed, as
bench/proxy.py does (luma PSNR, BT.601).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tempo.bench.proxy import legacy_proxy, released_processor, sampled_segments, write_lavfi_video
from tempo.memory.proxy import (
    LEGACY_SETTINGS,
    ProxySettings,
    compressor_input,
    decode_proxy,
    encode_proxy,
    luma_psnr,
    proxy_info,
    proxy_shape,
    stream_proxy_settings,
)
from tempo.memory.records import SegmentRecord, StreamSettings
from tempo.models import TempoModel
from tempo.models.tiny import write_tiny_checkpoint
from tempo.streaming.segment import Segment, SourceInfo
from tempo.tools.cli import main

DATA = Path(__file__).with_name("data")
LIVE = SourceInfo(uri="rtsp://camera/1", kind="network", live=True)
FILE = SourceInfo(uri="/videos/a.mp4", kind="file", live=False)
CAP = ProxySettings().max_bytes


def scene(t: int = 8, h: int = 288, w: int = 512) -> np.ndarray:
    """A smooth textured background with a block moving right: (T, H, W, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    red = 128 + 60 * np.sin(xx / 17 + yy / 23)
    green = 100 + 50 * np.cos(yy / 11)
    blue = 90 + 40 * np.sin((xx + yy) / 29)
    bg = np.stack([red, green, blue], -1)
    frames = np.repeat(bg[None], t, axis=0)
    for i in range(t):
        frames[i, 100:160, 50 + 20 * i : 110 + 20 * i] = (200, 30, 30)
    return frames.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """One sampled 8-frame segment (512×288 from 720p) of each kind of FFmpeg content."""
    tmp = tmp_path_factory.mktemp("proxy-clips")
    out = {}
    for kind in ("testsrc2", "mandelbrot", "cellauto"):
        out[kind] = sampled_segments(write_lavfi_video(tmp / f"{kind}.mp4", kind, seconds=4.0))[0]
    return out


def test_a_proxy_decodes_to_exactly_the_frames_size_it_was_given() -> None:
    frames = scene(h=256, w=512)
    clip = encode_proxy(frames)
    assert proxy_shape(clip) == (8, 256, 512)
    assert proxy_info(clip).version == 2 and proxy_info(clip).crf == ProxySettings().crf
    decoded = decode_proxy(clip)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert luma_psnr(frames, decoded) > 40


def test_a_proxy_holds_the_frames_the_compressor_is_fed(tiny_model) -> None:
    frames = scene(h=96, w=128)  # the compressor resizes these
    fed = compressor_input(frames, tiny_model.processor)
    assert fed.shape != frames.shape
    decoded = decode_proxy(encode_proxy(frames, processor=tiny_model.processor))
    assert decoded.shape == fed.shape
    assert luma_psnr(fed, decoded) > 38  # only the codec between them


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TempoModel:
    return TempoModel.load(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tempo-tiny"))


@pytest.mark.parametrize("size", [(288, 512), (512, 288), (240, 320), (144, 176), (96, 512)])
def test_the_compressor_fed_from_a_proxy_sees_what_it_saw_at_ingest(size: tuple[int, int]) -> None:
    # Sampled frame sizes of common and awkward sources; where the compressor's resize would move its
    # own output (small or very wide sources), the proxy keeps the sampled frames instead.
    processor = released_processor()
    frames = scene(h=size[0], w=size[1])
    fed = compressor_input(frames, processor)
    again = compressor_input(decode_proxy(encode_proxy(frames, processor=processor)), processor)
    assert again.shape == fed.shape
    assert luma_psnr(fed, again) > 38


def test_recompressing_a_live_segment_from_its_proxy_sees_only_the_codec(tiny_model) -> None:
    frames = scene(h=96, w=128)
    times = np.arange(8) / 2.0
    segment = Segment("cam", 0, 0.0, 4.0, times, frames, LIVE, 2.0)
    record = SegmentRecord.from_segment(
        segment, np.zeros((4, 64), np.float32), np.ones(8, np.float32), processor=tiny_model.processor
    )
    decoded = decode_proxy(record.proxy)
    fed = compressor_input(frames, tiny_model.processor)
    assert decoded.shape == fed.shape and luma_psnr(fed, decoded) > 35
    # The compressor takes the proxy's frames as they are: its resize leaves them unchanged.
    assert np.array_equal(compressor_input(decoded, tiny_model.processor), decoded)
    from_proxy = Segment("cam", 0, 0.0, 4.0, times, decoded, LIVE, 2.0)
    s0, m0 = tiny_model.compress([segment], "Is there a red block?")
    s1, m1 = tiny_model.compress([from_proxy], "Is there a red block?")
    rel = float((m1 - m0).pow(2).mean().sqrt() / m0.pow(2).mean().sqrt())
    assert rel < 0.05 and abs(float(s1[0] - s0[0])) < 0.01


def test_a_file_segment_keeps_a_reference_not_a_proxy() -> None:
    segment = Segment("f", 0, 0.0, 4.0, np.arange(8) / 2.0, scene(h=64, w=96), FILE, 2.0)
    record = SegmentRecord.from_segment(segment, np.zeros((4, 8), np.float32), np.ones(8, np.float32))
    assert record.proxy is None and record.file_ref is not None


@pytest.mark.parametrize(("kind", "target_db"), [("testsrc2", 40.0), ("mandelbrot", 37.0)])
def test_default_proxies_meet_the_luma_psnr_target_within_the_byte_cap(clips, kind: str, target_db: float) -> None:
    processor = released_processor()
    frames = clips[kind]
    fed = compressor_input(frames, processor)
    clip = encode_proxy(frames, processor=processor)
    assert len(clip) <= CAP <= 48 * 1024  # the per-segment target
    assert luma_psnr(fed, decode_proxy(clip)) >= target_db


def test_default_proxies_are_much_closer_than_the_legacy_ones(clips) -> None:
    processor = released_processor()
    frames = clips["mandelbrot"]
    fed = compressor_input(frames, processor)
    legacy = compressor_input(decode_proxy(legacy_proxy(frames)), processor)
    new = decode_proxy(encode_proxy(frames, processor=processor))
    assert luma_psnr(fed, new) > luma_psnr(fed, legacy) + 3


def test_a_busy_segment_is_re_encoded_coarser_to_fit_the_byte_cap_and_records_its_crf(clips) -> None:
    frames = compressor_input(clips["cellauto"], released_processor())
    uncapped = encode_proxy(frames, ProxySettings(max_bytes=None, target_db=None))
    assert len(uncapped) > CAP  # busy: the default CRF alone would not fit
    capped = encode_proxy(frames)
    assert len(capped) <= CAP
    assert proxy_info(capped).crf > ProxySettings().crf == proxy_info(uncapped).crf
    assert decode_proxy(capped).shape == frames.shape


def test_a_tighter_cap_lowers_the_quality_only_as_far_as_needed() -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (8, 128, 192, 3), dtype=np.uint8)
    full = encode_proxy(noisy, ProxySettings(max_bytes=None, target_db=None))
    capped = encode_proxy(noisy, ProxySettings(max_bytes=len(full) // 2))
    assert len(capped) <= len(full) // 2
    crf = proxy_info(capped).crf
    assert ProxySettings().crf < crf < 51
    # The finest CRF that fits: one step finer would not.
    assert len(encode_proxy(noisy, ProxySettings(crf=crf - 1, max_bytes=None, target_db=None))) > len(full) // 2


@pytest.mark.parametrize("t", [1, 2, 8])
def test_short_windows_keep_their_frame_count(t: int) -> None:
    frames = scene(t=t, h=64, w=96)
    assert decode_proxy(encode_proxy(frames)).shape == (t, 64, 96, 3)


def test_odd_frame_sides_decode_to_the_same_odd_size() -> None:
    frames = scene(t=3, h=33, w=47)
    clip = encode_proxy(frames)
    info = proxy_info(clip)
    assert (info.height, info.width, info.coded_height, info.coded_width) == (33, 47, 34, 48)
    assert decode_proxy(clip).shape == (3, 33, 47, 3)


def test_lower_crf_gives_a_closer_proxy() -> None:
    frames = scene()
    psnr = {crf: luma_psnr(frames, decode_proxy(encode_proxy(frames, ProxySettings(crf=crf, target_db=None))))
            for crf in (20, 40)}
    assert psnr[20] > psnr[40] + 1


def test_a_proxy_made_the_old_way_still_decodes_at_its_segments_size() -> None:
    # Made by memory/proxy.py of commit 6b573c8 (256-px longer edge, CRF 32): see data/make_proxy_v1.py.
    clip = (DATA / "proxy_v1.bin").read_bytes()
    info = proxy_info(clip)
    assert (info.version, info.frames, info.height, info.width, info.crf) == (1, 8, 288, 512, 32)
    assert (info.coded_height, info.coded_width) == (144, 256)
    decoded = decode_proxy(clip)
    assert decoded.shape == (8, 288, 512, 3)
    assert np.abs(decoded.astype(np.float32) - scene()).mean() < 8.0
    for i in range(8):  # the moving block is where it was in every frame
        block = decoded[i, 110:150, 60 + 20 * i : 100 + 20 * i].mean(axis=(0, 1))
        assert block[0] > 150 and block[1] < 80


def test_bytes_that_are_not_a_proxy_are_refused() -> None:
    for data in (b"", b"TPX9" + bytes(40), b"\x00" * 64):
        with pytest.raises(ValueError, match="not a Tempo proxy clip"):
            proxy_info(data)


@pytest.mark.parametrize("crf", [-1, 52])
def test_proxy_quality_outside_the_crf_range_is_refused(crf: int) -> None:
    with pytest.raises(ValueError, match="from 0 to 51"):
        ProxySettings(crf=crf)


def test_streams_show_their_proxy_settings(store, records) -> None:
    live = dict(LIVE.to_dict())
    recorded = ProxySettings(crf=26).to_dict()
    settings = StreamSettings(**{**records.SETTINGS.to_dict(), "extra": {"proxy": recorded}})
    store.create_stream("cam-new", live, settings)
    store.create_stream("cam-old", live, records.SETTINGS)  # made before proxy settings were recorded
    store.create_stream("file", records.FILE_SOURCE, records.SETTINGS)
    shown = {s["name"]: s["proxy"] for s in (i.summary() for i in store.list_streams())}
    assert shown["cam-new"] == {"format": 2, "size": "compressor input", "crf": 26, "preset": "medium",
                                "max_bytes": CAP, "x264_params": "psy=0:aq-mode=0", "bframes": 3,
                                "target_db": 40.0}
    assert shown["cam-old"] == LEGACY_SETTINGS and shown["file"] is None
    assert ProxySettings.from_dict(recorded) == ProxySettings(crf=26)
    assert stream_proxy_settings({"kind": "stdin", "live": False}, None) == LEGACY_SETTINGS
    # Recorded before the fidelity tuning: the stream keeps encoding as it did.
    before = {"format": 2, "size": "compressor input", "crf": 30, "preset": "medium", "max_bytes": CAP}
    assert ProxySettings.from_dict(before) == ProxySettings(x264_params="", bframes=0, target_db=None)


SIGMA = 4.0  # sensor noise of the generated zoom: the old defaults gave it 36.4 dB at 24.7 KiB


def noisy_fractal_zoom(t: int = 8, h: int = 256, w: int = 512, seed: int = 0) -> np.ndarray:
    """A Mandelbrot zoom with camera-like sensor noise (Gaussian, σ = SIGMA, new each frame): (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(t):
        scale = 3.0 * 0.9**i
        x = -0.743 + scale * (np.arange(w)[None] / w - 0.5)
        c = x + 1j * (0.131 + scale * h / w * (np.arange(h)[:, None] / h - 0.5))
        z, count = np.zeros_like(c), np.zeros(c.shape)
        for _ in range(40):
            inside = np.abs(z) <= 2
            z[inside] = z[inside] ** 2 + c[inside]
            count += inside
        hue = count / 40
        rgb = np.stack([255 * hue, 255 * hue**0.5, 255 * (1 - hue) * hue * 4], -1)
        frames.append(rgb + rng.normal(0, SIGMA, rgb.shape))
    return np.stack(frames).clip(0, 255).astype(np.uint8)


def test_the_default_reaches_37_db_on_a_noisy_fractal_zoom_within_the_cap() -> None:
    frames = noisy_fractal_zoom()
    plain = encode_proxy(frames, ProxySettings(x264_params="", bframes=0, target_db=None))
    clip = encode_proxy(frames)
    assert len(clip) <= CAP
    assert luma_psnr(frames, decode_proxy(clip)) >= 37.0
    # the tuning and the per-segment rate control are what get it there
    assert luma_psnr(frames, decode_proxy(clip)) > luma_psnr(frames, decode_proxy(plain)) + 0.5


def test_ingest_refuses_a_proxy_quality_outside_the_crf_range_in_one_line(tmp_path, capsys) -> None:
    assert main(["ingest", str(tmp_path / "x.mp4"), "--stream", "s", "--proxy-quality", "60"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "tempo ingest: error: argument --proxy-quality: input should be less than or equal to 51 (got '60') "
        "(see `tempo ingest --help`)"
    ]
