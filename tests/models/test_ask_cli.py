"""`tempo ask` end to end: a real generated video, real decoding, the tiny checkpoint."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from tempo.engine.result import TimelineRow, TurnResult
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(
        tmp_path_factory.mktemp("video") / "clip.mp4", duration=21.0, fps=10.0, size=(160, 96)
    )


def test_ask_json_tiles_the_video_and_obeys_the_budget(video: Path, tiny_dir: Path, capsys) -> None:
    rc = main(
        [
            "ask",
            str(video),
            "What is shown?",
            "--model",
            str(tiny_dir),
            "--budget",
            "40",
            "--json",
            "--max-new-tokens",
            "6",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == TurnResult.__required_keys__  # the one result, as from memory
    assert (out["stream"], out["source"], out["thread_id"]) == (None, str(video), None)
    assert isinstance(out["answer"], str) and out["budget"] == 40
    # The release's sampling by default: round(21 s · 2) = 42 frames over 21 s of video.
    assert out["sampling"] == "release" and out["real_fps"] == pytest.approx(42 / 21.0)
    segs = out["segments"]
    assert [s["index"] for s in segs] == list(range(6))  # 21 s at 2 fps → 5 full windows + the rest
    assert segs[0]["start"] == 0.0
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in itertools.pairwise(segs))
    assert 21.0 <= segs[-1]["end"] <= 21.5  # through the last frame, plus at most one sampling interval
    assert all(set(s) == TimelineRow.__required_keys__ and s["kind"] == "candidate" for s in segs)
    assert all(0.0 < s["relevance"] < 1.0 for s in segs)
    tokens = [s["tokens"] for s in segs]
    assert sum(tokens) <= 40 and min(tokens) >= 4 and max(tokens) <= 32
    frames = sum(seg.num_frames for seg in iter_segments(str(video), config=SamplingConfig(sampling="release")))
    assert out["avg_tokens_per_frame"] == pytest.approx(sum(tokens) / frames, abs=1e-4)
    assert {"load_s", "decode_s", "compress_s", "allocate_s", "answer_s", "total_s"} <= set(out["timings"])


def test_ask_reports_the_real_fps_of_a_file_whose_length_is_not_a_whole_number_of_samples(
    tmp_path: Path, tiny_dir: Path, capsys
) -> None:
    clip = write_test_video(tmp_path / "odd.mp4", duration=10.3, fps=10.0, size=(64, 48))  # 103 frames
    assert main(["ask", str(clip), "What?", "--model", str(tiny_dir), "--json", "--max-new-tokens", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    # N = round(10.3 · 2) = 21 frames; real_fps = 21 / 10.3: every time on the model's clock uses it.
    assert out["sampling"] == "release" and out["real_fps"] == pytest.approx(21 / 10.3, abs=1e-6)
    assert [s["index"] for s in out["segments"]] == [0, 1, 2]


def test_ask_can_sample_on_the_stream_grid(video: Path, tiny_dir: Path, capsys) -> None:
    args = ["ask", str(video), "What?", "--model", str(tiny_dir), "--json", "--max-new-tokens", "1"]
    assert main([*args, "--sampling", "stream"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampling"] == "stream" and out["real_fps"] == 2.0


def test_ask_prints_answer_timeline_and_stage_times(video: Path, tiny_dir: Path, capsys) -> None:
    assert main(["ask", str(video), "What?", "--model", str(tiny_dir), "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "timeline: 6 segments" in out and "relevance" in out and "tokens/frame" in out
    assert "compress" in out and "answer" in out


def test_model_comes_from_the_environment(video: Path, tiny_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TEMPO_MODEL", str(tiny_dir))
    assert main(["ask", str(video), "What?", "--json", "--max-new-tokens", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["budget"] == 8192


def test_unavailable_model_is_one_line_and_nonzero(video: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("TEMPO_MODEL", raising=False)
    rc = main(["ask", str(video), "What?", "--model", "Vision-CAIR/Tempo-6B-not-here"])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and "cannot be downloaded here" in err


def test_malformed_checkpoint_is_one_line_and_nonzero(video: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text("{not json")
    rc = main(["ask", str(video), "What?", "--model", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "not valid JSON" in err


def test_missing_video_is_one_line_and_nonzero(tiny_dir: Path, tmp_path: Path, capsys) -> None:
    rc = main(["ask", str(tmp_path / "nope.mp4"), "What?", "--model", str(tiny_dir)])
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "nope.mp4" in err
