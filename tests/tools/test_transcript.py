"""The text track through the ways in: REST transcript and search words, the tools (MCP/LangChain)."""

from __future__ import annotations

import pytest
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import write_vtt

STREAM = "lecture"
CUES = [(1.0, 3.0, "welcome to the lecture"), (6.5, 9.0, "the budget deadline is friday"),
        (13.0, 14.0, "questions please")]


@pytest.fixture(scope="module")
def lecture(live_service, tmp_path_factory):
    root = tmp_path_factory.mktemp("lecture")
    video = write_test_video(root / "lecture.mp4", duration=16.0, fps=10)
    write_vtt(root / "lecture.vtt", CUES)
    live_service.ingest(str(video), STREAM, progress=False)
    yield live_service
    live_service.store.delete_stream(STREAM)


@pytest.fixture(scope="module")
def client(lecture):
    from fastapi.testclient import TestClient
    from tempo.tools.server import ServeSettings, create_app

    app = create_app(lecture, ServeSettings(warm=False, resume_jobs=False))
    with TestClient(app, base_url="http://127.0.0.1") as c:  # loopback: no token needed
        yield c


def test_rest_transcript_of_a_time_range(client) -> None:
    body = client.get(f"/v1/streams/{STREAM}/transcript", params={"start": 5, "end": 10}).json()
    assert body["stream"] == STREAM and body["start"] == 5.0 and body["end"] == 10.0
    assert body["cues"] == [{"text": "the budget deadline is friday", "start": 6.5, "end": 9.0,
                             "source": "vtt", "language": None}]
    everything = client.get(f"/v1/streams/{STREAM}/transcript").json()
    assert [c["text"] for c in everything["cues"]] == [t for _, _, t in CUES]  # each cue once, in order


def test_rest_transcript_refuses_bad_input_in_one_sentence(client) -> None:
    missing = client.get("/v1/streams/nosuch/transcript")
    assert missing.status_code == 404
    backwards = client.get(f"/v1/streams/{STREAM}/transcript", params={"start": 9, "end": 2})
    assert backwards.status_code == 422


def test_rest_search_matches_words_and_shows_them(client, lecture) -> None:
    body = client.post("/v1/search", json={"query": "budget deadline", "streams": [STREAM], "top_k": 2}).json()
    top = body["moments"][0]
    assert top["words"] == ["the budget deadline is friday"]
    assert top["start"] < 9.0 and top["end"] > 6.5  # a segment the cue overlaps


def test_transcript_and_search_tools(lecture) -> None:
    from tempo.agent.toolkit import VideoToolkit
    from tempo.tools.langchain_tools import tempo_tools

    toolkit = VideoToolkit.for_service(lecture)
    out = toolkit.call("transcript", {"stream": STREAM, "start": 12})
    assert [c["text"] for c in out["cues"]] == ["questions please"]
    moments = toolkit.call("search_moments", {"stream": STREAM, "query": "welcome lecture", "top_k": 1})["moments"]
    assert moments[0]["words"] == ["welcome to the lecture"]
    tools = {t.name: t for t in tempo_tools(toolkit)}
    assert "questions please" in str(tools["transcript"].invoke({"stream": STREAM, "start": 12.0}))


def test_rest_search_across_streams_ranks_words_and_pictures_on_one_scale(client) -> None:
    body = client.post("/v1/search", json={"query": "budget deadline", "streams": ["cam", STREAM], "top_k": 4}).json()
    moments = body["moments"]
    assert moments[0]["stream"] == STREAM and moments[0]["words"] == ["the budget deadline is friday"]
    assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
    assert "cam" in {m["stream"] for m in moments}  # the picture-only stream still takes part
