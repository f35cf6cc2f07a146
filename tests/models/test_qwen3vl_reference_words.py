"""The open-weights family reads words in reference mode too (issues 23, 24): `tempo ask VIDEO Q --model
QWEN3VL_DIR` takes the video's text track (its mov_text stream, the sidecar VIDEO.srt, or `--subtitles
PATH`) with the same reserve and choice of cues as memory mode, so for a stream of at most K segments
memory mode and reference mode give the same rows, renditions, cues, tokens and answer. Real tiny
Qwen3-VL checkpoint, real Redis and FAISS, real generated videos, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tempo.engine.text_track import segment_words, text_reserve
from tempo.models.qwen3vl_family import Qwen3VLFamily
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.settings import AskSettings
from tempo.streaming.subtitles import Cue
from tempo.streaming.synthetic_text import write_srt, write_subtitled_video
from tempo.tools.cli import main

CONTAINER = [(2.0, 3.5, "good morning everyone"), (9.0, 10.5, "look, a blue elephant crosses the road")]
SIDECAR = [(16.0, 17.5, "the red kite flies over the hill")]
BUDGET = 600


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "qwen3-vl-tiny", seed=0)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video with a mov_text subtitle stream and an SRT sidecar beside it."""
    root = tmp_path_factory.mktemp("talk")
    video = write_subtitled_video(root / "talk.mp4", CONTAINER, duration=21.0, codec="mov_text", language="eng",
                                  fps=10, size=(160, 96))  # fmt: skip
    write_srt(root / "talk.srt", SIDECAR)
    return video


@pytest.fixture()
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """(decoded prompt, texts) of every local answer's inputs: the real `build_inputs`, recorded."""
    seen: list[tuple[str, list[str]]] = []
    real = Qwen3VLFamily.build_inputs

    def spy(self: Qwen3VLFamily, question: str, clips: Any, texts: Any = None) -> dict:
        inputs = real(self, question, clips, texts)
        seen.append((self.tokenizer.decode(inputs["input_ids"][0].tolist(), skip_special_tokens=False),
                     list(texts or [])))  # fmt: skip
        return inputs

    monkeypatch.setattr(Qwen3VLFamily, "build_inputs", spy)
    return seen


def _ask_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["ask", *argv, "--json", "--budget", str(BUDGET), "--max-new-tokens", "4"]) == 0
    return json.loads(capsys.readouterr().out)


def _words(cue: tuple[float, float, str]) -> str:
    return segment_words([Cue(cue[0], cue[1], cue[2], "srt")])


def test_memory_mode_equals_reference_mode_with_subtitles_for_at_most_k_segments(
    qwen_dir: Path, talk: Path, redis_url: str, capsys: pytest.CaptureFixture[str], prompts: list
) -> None:
    opts = ["--model", str(qwen_dir)]
    assert main(["ingest", str(talk), "--stream", "open-words", *opts, "--redis-url", redis_url]) == 0
    capsys.readouterr()
    question = "when is 'blue elephant' said?"
    memory = _ask_json(capsys, "--stream", "open-words", question, *opts, "--redis-url", redis_url, "--top-k", "50")
    memory_prompt = prompts[-1]
    reference = _ask_json(capsys, str(talk), question, *opts, "--sampling", "stream")
    reference_prompt = prompts[-1]
    assert (reference["family"], reference["tokens_unit"]) == ("qwen3-vl", "qwen3-vl visual tokens")
    assert all(r["kind"] == "candidate" for r in memory["segments"])  # every segment within top-K
    keys = ("index", "start", "end", "tokens", "kind", "rendition", "cues")
    assert [{k: r[k] for k in keys} for r in memory["segments"]] == [
        {k: r[k] for k in keys} for r in reference["segments"]
    ]
    said = [c for r in reference["segments"] for c in r["cues"]]
    assert {c["source"] for c in said} == {"container:mov_text", "srt"}  # both the stream and the sidecar
    assert {c["text"] for c in said} == {t for _, _, t in CONTAINER + SIDECAR}
    assert memory["tokens"] == reference["tokens"] <= BUDGET - text_reserve(AskSettings().text_tokens, BUDGET, True)
    assert memory["answer"] == reference["answer"]
    assert reference_prompt == memory_prompt  # the same prompt, words after each clip's first time tag
    assert CONTAINER[1][2] in reference_prompt[0]


def test_reference_mode_reads_a_subtitles_file_given_on_the_command_line(
    qwen_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], prompts: list
) -> None:
    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(tmp_path / "plain.mp4", duration=12.0, fps=10.0, size=(160, 96))
    cue = (5.0, 6.5, "the green parrot sings")
    subs = write_srt(tmp_path / "elsewhere.srt", [cue])
    plain = _ask_json(capsys, str(video), "what is sung?", "--model", str(qwen_dir))
    assert all(r["cues"] == [] for r in plain["segments"]) and cue[2] not in prompts[-1][0]
    result = _ask_json(capsys, str(video), "what is sung?", "--model", str(qwen_dir), "--subtitles", str(subs))
    row = next(r for r in result["segments"] if r["start"] <= 5.5 < r["end"])
    assert row["cues"] == [{"text": cue[2], "start": 5.0, "end": 6.5, "source": "srt", "language": None}]
    assert [r["index"] for r in result["segments"] if r["cues"]] == [row["index"]]
    text, texts = prompts[-1]
    assert text.count(cue[2]) == 1 and _words(cue) in texts
    assert result["tokens"] <= BUDGET - text_reserve(AskSettings().text_tokens, BUDGET, True)
    assert plain["tokens"] > result["tokens"]  # without words the whole budget is visual


def test_reference_mode_keeps_the_words_within_their_cap_by_relevance(qwen_dir: Path, talk: Path) -> None:
    from tempo.engine.reference import answer_video
    from tempo.streaming import SamplingConfig, iter_segments
    from tempo.streaming.subtitles import load_text_track

    model = Qwen3VLFamily.load(qwen_dir, device="cpu")
    track = load_text_track(str(talk))
    cap = max(model.count_text_tokens(_words(c)) for c in CONTAINER + SIDECAR)  # one segment's words fit
    settings = AskSettings(budget=BUDGET, text_tokens=cap, max_new_tokens=2, answer_cache=False)
    sampling = SamplingConfig(fps=model.config.fps, window=model.config.window, max_edge=model.config.max_edge,
                              sampling="stream")  # fmt: skip
    result = answer_video(model, iter_segments(str(talk), config=sampling), "what is said?", settings=settings,
                          text_track=track)  # fmt: skip
    with_words = [r for r in result["segments"] if r["cues"]]
    spoken = [r for r in result["segments"] if track.overlapping(r["start"], r["end"])]
    assert len(with_words) == 1 and len(spoken) == 3
    assert with_words[0]["relevance"] == max(r["relevance"] for r in spoken)  # the most relevant one's words
    assert result["tokens"] <= BUDGET - cap
