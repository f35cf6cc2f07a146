"""Subtitles as timed memory, end to end on the real tiny model, Redis and FAISS: cues committed with
their segments, found by words (BM25 fused with FAISS), and carried into the answer's prompt."""

from __future__ import annotations

import pytest
from tempo.settings import AskSettings
from tempo.streaming.synthetic_text import write_srt, write_subtitled_video

STREAM = "talk"
CUES = [(2.0, 3.5, "good morning everyone"), (17.0, 19.0, "look, a blue elephant crosses the road"),
        (29.0, 31.0, "thank you and goodbye")]
SIDECAR = [(33.0, 35.5, "the red kite flies over the hill")]


@pytest.fixture(scope="module")
def talk(live_memory, live_service, tmp_path_factory):
    root = tmp_path_factory.mktemp("talk")
    video = write_subtitled_video(root / "talk.mp4", CUES, duration=40.0, codec="mov_text", language="eng",
                                  fps=10, size=(160, 96))
    write_srt(root / "talk.srt", SIDECAR)  # the sidecar beside it
    live_service.ingest(str(video), STREAM, progress=False)
    yield live_service
    live_service.store.delete_stream(STREAM)


def _segment_at(service, t: float) -> int:
    info = service.stream(STREAM)
    records = service.store.get_segments(STREAM, list(range(info.first, info.committed + 1)), tokens=False,
                                         embedding=False, recompress=False)
    return next(r.index for r in records if r.start <= t < r.end)


def test_each_segment_keeps_the_cues_overlapping_it_from_the_container_and_the_sidecar(talk) -> None:
    records = {r.index: r for r in talk.store.iter_segments(STREAM)}
    with_cues = {i: [(c.text, c.source, c.language) for c in r.cues] for i, r in records.items() if r.cues}
    elephant = _segment_at(talk, 18.0)
    kite = _segment_at(talk, 34.0)
    assert with_cues[elephant] == [("look, a blue elephant crosses the road", "container:mov_text", "eng")]
    assert with_cues[kite] == [("the red kite flies over the hill", "srt", None)]
    for i, r in records.items():  # every cue lies on the segments it overlaps, and only there
        for c in r.cues:
            assert c.end > r.start and c.start < r.end, (i, c)
    assert sum(len(r.cues) for r in records.values()) >= len(CUES) + len(SIDECAR)


def test_the_keyword_path_finds_the_segment_where_blue_elephant_is_said(talk) -> None:
    hits = talk.recall.keywords.search(STREAM, "when is 'blue elephant' said?", k=3)
    assert hits[0].index == _segment_at(talk, 18.0)
    assert hits[0].score > 0
    assert talk.recall.keywords.search(STREAM, "zebra", k=3) == []


def test_blue_elephant_question_retrieves_its_segment_and_the_cue_enters_the_prompt(talk, conversations,
                                                                                      monkeypatch) -> None:
    seen: list[list[str]] = []
    model = talk.model
    real_answer = model.answer

    def spy(*args, **kwargs):  # calls the real model through; records the words it was given
        seen.append(list(kwargs.get("texts") or []))
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(model, "answer", spy)
    settings = AskSettings(max_new_tokens=4, top_k=1, neighbours=0, answer_cache=False)
    result = conversations.ask_once(STREAM, "when is 'blue elephant' said?", settings=settings)
    elephant = _segment_at(talk, 18.0)
    assert elephant in [h["index"] for h in result["candidates"]]
    row = next(r for r in result["segments"] if r["index"] == elephant)
    assert [c["text"] for c in row["cues"]] == ["look, a blue elephant crosses the road"]
    assert row["cues"][0] == {"text": "look, a blue elephant crosses the road", "start": 17.0, "end": 19.0,
                              "source": "container:mov_text", "language": "eng"}
    assert seen and any("blue elephant" in t for t in seen[-1])
    assert len(seen[-1]) == len(result["segments"])  # one text per segment of the prompt


def test_the_cue_words_respect_their_token_cap(talk, conversations) -> None:
    settings = AskSettings(max_new_tokens=2, answer_cache=False, text_tokens=1)
    result = conversations.ask_once(STREAM, "what is said?", settings=settings)
    assert all(r["cues"] == [] for r in result["segments"])  # no segment's words fit in 1 token


def test_memory_mode_equals_reference_mode_with_subtitles_when_the_stream_fits_top_k(talk, conversations) -> None:
    from tempo.engine.reference import answer_video
    from tempo.streaming import SamplingConfig, iter_segments
    from tempo.streaming.subtitles import load_text_track

    video = talk.store.stream_info(STREAM).source["uri"]
    question = "when is 'blue elephant' said?"
    settings = AskSettings(max_new_tokens=6, top_k=16, neighbours=0, answer_cache=False)
    memory = conversations.ask_once(STREAM, question, settings=settings)
    sampling = SamplingConfig(fps=talk.inference.fps, window=talk.inference.window, max_edge=talk.inference.max_edge)
    with talk.model_lock:  # the reference reads the same file, its sidecar and its mov_text stream itself
        reference = answer_video(talk.model, iter_segments(video, config=sampling), question, settings=settings,
                                 text_track=load_text_track(video))
    assert len(reference["segments"]) == len(memory["segments"]) == 10
    assert sorted(c["index"] for c in memory["candidates"]) == list(range(10))
    assert [r["cues"] for r in reference["segments"]] == [r["cues"] for r in memory["segments"]]
    assert sum(bool(r["cues"]) for r in reference["segments"]) >= 4  # mov_text and sidecar cues both entered
    assert [r["tokens"] for r in reference["segments"]] == [r["tokens"] for r in memory["segments"]]
    assert reference["tokens"] <= settings.budget - min(settings.text_tokens, settings.budget // 2)
    assert reference["answer"] == memory["answer"]


def test_reference_mode_reads_a_subtitle_file_and_refuses_a_broken_one_in_one_line(live_memory, tmp_path) -> None:
    import subprocess

    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(tmp_path / "v.mp4", duration=2.0, fps=10)
    bad = tmp_path / "bad.vtt"
    bad.write_text("WEBVTT\n\n00:01.000 -> 00:02.000\nhello\n")
    run = subprocess.run([*live_memory.cli("ask", str(video), "what is said?", "--subtitles", str(bad))],
                         env=live_memory.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no valid cue" in lines[0] and "bad.vtt line 3" in lines[0], run.stderr
    good = write_srt(tmp_path / "good.srt", [(0.5, 1.5, "hello from the file")])
    run = subprocess.run([*live_memory.cli("ask", str(video), "what is said?", "--subtitles", str(good), "--json",
                                           "--max-new-tokens", "2")],
                         env=live_memory.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import json

    rows = json.loads(run.stdout.strip().splitlines()[-1])["segments"]
    assert [c["text"] for r in rows for c in r["cues"]] == ["hello from the file"]  # the words reached the prompt
    memory = subprocess.run([*live_memory.cli("ask", "--stream", STREAM, "what?", "--subtitles", str(bad))],
                            env=live_memory.env(), capture_output=True, text=True, timeout=300)
    assert memory.returncode == 2 and "--subtitles is for a VIDEO" in memory.stderr.strip().splitlines()[-1]


def test_subtitles_add_gives_an_ingested_stream_more_cues_once(talk, live_memory, tmp_path) -> None:
    import subprocess

    extra = write_srt(tmp_path / "later.srt", [(25.0, 26.0, "a purple giraffe appears")])
    run = subprocess.run([*live_memory.cli("subtitles", "add", STREAM, str(extra), "--json")],
                         env=live_memory.env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import json

    out = json.loads(run.stdout)
    assert out["cues_placed"] >= 1 and out["segments_updated"] == out["cues_placed"]
    hits = talk.recall.keywords.search(STREAM, "purple giraffe", k=2)
    assert hits and hits[0].index == _segment_at(talk, 25.5)
    record = talk.store.get_segment(STREAM, hits[0].index, tokens=False, embedding=False, recompress=False)
    assert "a purple giraffe appears" in [c.text for c in record.cues]
    again = subprocess.run([*live_memory.cli("subtitles", "add", STREAM, str(extra), "--json")],
                           env=live_memory.env(), capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["cues_placed"] == 0  # idempotent


def test_subtitles_add_refuses_a_broken_file_in_one_line_and_changes_nothing(talk, live_memory, tmp_path) -> None:
    import subprocess

    bad = tmp_path / "bad.srt"
    bad.write_text("1\n00:00:01,000 --> nonsense\nhello\n")
    before = talk.store.client.hget(talk.store.keys.info(STREAM), "b_meta")
    run = subprocess.run([*live_memory.cli("subtitles", "add", STREAM, str(bad))], env=live_memory.env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no valid cue" in lines[0] and "line 2" in lines[0], run.stderr
    assert talk.store.client.hget(talk.store.keys.info(STREAM), "b_meta") == before
    missing = subprocess.run([*live_memory.cli("subtitles", "add", "nosuch", str(bad))], env=live_memory.env(),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_ingest_with_a_broken_subtitle_file_stops_in_one_line_before_writing(live_memory, live_service,
                                                                             tmp_path) -> None:
    import subprocess

    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(tmp_path / "v.mp4", duration=2.0, fps=10)
    bad = tmp_path / "bad.srt"
    bad.write_text("1\n00:00:01,000 => 00:00:02,000\nhello\n")
    run = subprocess.run([*live_memory.cli("ingest", str(video), "--stream", "broken", "--subtitles", str(bad))],
                         env=live_memory.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no valid cue" in lines[0] and "bad.srt line 1" in lines[0], run.stderr
    assert "broken" not in [s.name for s in live_service.store.list_streams()]


def test_a_cross_stream_question_reserves_the_words_and_carries_their_cues(talk, conversations, monkeypatch) -> None:
    from tempo.engine.text_track import segment_words

    seen: list[list[str]] = []
    model = talk.model
    real_answer = model.answer

    def spy(*args, **kwargs):  # calls the real model through; records the words it was given
        seen.append(list(kwargs.get("texts") or []))
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(model, "answer", spy)
    record = talk.store.get_segment(STREAM, _segment_at(talk, 18.0), tokens=False, embedding=False, recompress=False)
    cap = model.count_text_tokens(segment_words(record.cues))
    settings = AskSettings(max_new_tokens=2, answer_cache=False, budget=256, text_tokens=cap)
    result = conversations.ask_streams(["cam", STREAM], "when is 'blue elephant' said?", settings=settings)
    worded = [(r["stream"], r["index"]) for r in result["segments"] if r["cues"]]
    assert worded == [(STREAM, record.index)]  # the cap holds exactly that segment's words
    assert result["tokens"] <= settings.budget - cap  # taken from the visual budget before ATA
    assert len(seen[-1]) == len(result["segments"]) and seen[-1].count(segment_words(record.cues)) == 1
    assert sum(model.count_text_tokens(t) for t in seen[-1] if t) <= cap
