"""Real test media with text: videos carrying subtitle streams, and subtitle files (tests, benchmarks).

`write_subtitled_video` writes a test video (`synthetic.write_test_video`) and remuxes it with a text
subtitle stream: MP4 `mov_text`, or Matroska `subrip` / `ass` / `webvtt`, each cue one packet with
its own pts and duration (milliseconds), the language in the stream's metadata, as FFmpeg muxes them.
`write_srt` / `write_vtt` write sidecar files.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from tempo.streaming.synthetic import write_test_video

# The minimal ASS header FFmpeg's text subtitle encoders expect (styles are not used by Tempo).
ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
    "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    "MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,"
    "0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
    "Effect, Text\n"
)

CueSpec = tuple[float, float, str]  # (start seconds, end seconds, text)


def _payload(codec: str, text: str, n: int) -> bytes:
    data = text.encode()
    if codec == "mov_text":
        return struct.pack(">H", len(data)) + data  # 16-bit length, then UTF-8 text (3GPP TS 26.245)
    if codec == "ass":
        return f"{n},0,Default,,0,0,0,,{text}".encode()  # Matroska ASS: ReadOrder,Layer,Style,...,Text
    return data  # subrip, webvtt: the text itself


def write_subtitled_video(
    path: str | os.PathLike[str],
    cues: Sequence[CueSpec],
    *,
    duration: float,
    codec: str = "mov_text",
    language: str | None = "eng",
    **video: object,
) -> Path:
    """A test video of `duration` seconds with one text subtitle stream of `cues` (`codec`: mov_text
    for .mp4, subrip / ass / webvtt for .mkv). Extra keywords go to `write_test_video`."""
    import av

    path = Path(path)
    plain = path.with_name(path.stem + ".video" + path.suffix)
    write_test_video(plain, duration=duration, **video)  # type: ignore[arg-type]
    with av.open(str(plain)) as src, av.open(str(path), "w") as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        sub = out.add_stream(codec)
        sub.time_base = Fraction(1, 1000)
        sub.codec_context.subtitle_header = ASS_HEADER.encode()
        if language:
            sub.metadata["language"] = language
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            out.mux(packet)
        for n, (start, end, text) in enumerate(cues):
            packet = av.Packet(_payload(codec, text, n))
            packet.stream = sub
            packet.time_base = sub.time_base
            packet.pts = packet.dts = round(start * 1000)
            packet.duration = round((end - start) * 1000)
            out.mux(packet)
    plain.unlink()
    return path


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def write_srt(path: str | os.PathLike[str], cues: Sequence[CueSpec]) -> Path:
    path = Path(path)
    blocks = [f"{n}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{t}\n" for n, (a, b, t) in enumerate(cues, start=1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def write_vtt(path: str | os.PathLike[str], cues: Sequence[CueSpec]) -> Path:
    path = Path(path)
    blocks = [f"{_clock(a, '.')} --> {_clock(b, '.')}\n{t}\n" for a, b, t in cues]
    path.write_text("WEBVTT\n\n" + "\n".join(blocks), encoding="utf-8")
    return path


def speak(text: str, path: str | os.PathLike[str]) -> Path:
    """Speech audio of `text` by Debian's espeak-ng (a WAV file); RuntimeError when it is missing."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: install it (apt-get install espeak-ng, or `make speech`)")
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True, timeout=60)
    return Path(path)


def write_spoken_video(path: str | os.PathLike[str], wav: str | os.PathLike[str] | None, *, at: float,
                       duration: float, **video: object) -> Path:
    """A test video of `duration` seconds whose audio track (16 kHz mono) is silent except for the WAV
    `wav` starting at `at` seconds (None: silence throughout). The suffix picks the container: Matroska
    with PCM audio, or `.ts` MPEG-TS with AAC (what a live camera sends). Audio and video packets are
    muxed interleaved in time order, as a camera sends them; the video's first frame is at time 0."""
    import av
    import numpy as np

    rate = 16_000
    samples = np.zeros(int(duration * rate), np.float32)
    if wav is not None:
        with av.open(str(wav)) as src:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            speech = np.concatenate([f.to_ndarray().reshape(-1) for fr in src.decode(audio=0)
                                     for f in resampler.resample(fr)])
        lo = int(at * rate)
        speech = speech[: max(0, len(samples) - lo)]
        samples[lo: lo + len(speech)] = speech
    path = Path(path)
    ts = path.suffix.lower() == ".ts"
    plain = path.with_name(path.stem + (".video.ts" if ts else ".video.mkv"))
    write_test_video(plain, duration=duration, **video)  # type: ignore[arg-type]
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(plain)) as src, av.open(str(path), "w", format="mpegts" if ts else "matroska") as out:
        vin = src.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("aac" if ts else "pcm_s16le", rate=rate, layout="mono")
        step = aout.codec_context.frame_size or rate // 10  # samples per audio frame
        audio_at = 0  # the next audio sample to encode

        def audio_until(t: float) -> None:  # encode and mux the audio up to `t` seconds
            nonlocal audio_at
            while audio_at < len(pcm) and audio_at / rate <= t:
                frame = av.AudioFrame.from_ndarray(pcm[None, audio_at: audio_at + step], format="s16", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, audio_at, Fraction(1, rate)
                out.mux(aout.encode(frame))
                audio_at += step

        for packet in src.demux(vin):
            if packet.size == 0:
                continue  # the demuxer's end marker
            if packet.pts is not None and packet.time_base is not None:
                audio_until(float(packet.pts * packet.time_base))
            packet.stream = vout
            out.mux(packet)
        audio_until(float("inf"))
        out.mux(aout.encode(None))
    plain.unlink()
    return path
