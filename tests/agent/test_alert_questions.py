"""The agent and the tools know alerts: `list_alerts` (toolkit, LangChain) and "what alerts fired ...?"."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from tempo.agent.conversations import Conversations
from tempo.agent.monitoring.alert_answers import alert_time_scope, is_alert_question
from tempo.agent.toolkit import ToolInputError, VideoToolkit
from tempo.memory.alerts import Rule
from tempo.memory.errors import InvalidTimeError
from tempo.service import TempoService
from tempo.tools.langchain_tools import tempo_tools


@pytest.fixture()
def service(redis_url: str, tmp_path: Path, commit_alert_scores: Callable[..., None]) -> TempoService:
    svc = TempoService(model=str(tmp_path / "no-model-needed"), redis_url=redis_url, home=tmp_path)
    svc.alerts.add_rule(
        Rule(id="", stream="gate", text="a person climbs the fence", enter=0.8, min_segments=1, cooldown=0)
    )
    commit_alert_scores("gate", [[0.1], [0.9], [0.95], [0.1], [0.9]], wallclock=time.time() - 60)
    return svc


def test_list_alerts_gives_each_episode_with_a_citation_of_its_segments(service: TempoService) -> None:
    toolkit = VideoToolkit.for_service(service)
    alerts = toolkit.call("list_alerts", {"stream": "gate", "since": "1h"})["alerts"]
    assert [a["id"] for a in alerts] == ["gate:r1:1", "gate:r1:4"]
    assert alerts[0]["citation"] == {"start": 4.0, "end": 12.0, "segments": [1, 2]}
    assert alerts[0]["closed_at"] is not None and alerts[1]["closed_at"] is None
    assert toolkit.call("list_alerts", {"since": str(time.time() + 60)})["alerts"] == []
    with pytest.raises(ToolInputError, match="list_alerts: invalid 'limit'"):
        toolkit.call("list_alerts", {"limit": 0})
    with pytest.raises(InvalidTimeError, match="since 'soon' is not a time"):
        toolkit.call("list_alerts", {"since": "soon"})


def test_the_langchain_tool_returns_the_alerts_as_json(service: TempoService) -> None:
    tool = {t.name: t for t in tempo_tools(VideoToolkit.for_service(service))}["list_alerts"]
    out = json.loads(tool.invoke({"stream": "gate"}))
    assert [a["rule"] for a in out["alerts"]] == ["r1", "r1"]
    assert "unknown stream 'nowhere'" in tool.invoke({"stream": "nowhere"})


def test_what_alerts_fired_is_answered_from_the_alerts_with_citations(service: TempoService) -> None:
    result = Conversations(service).ask("gate", "What alerts fired in the last 2 hours?")
    assert result["rewrite_source"] == "alerts"
    assert result["answer"].startswith("2 alerts fired on stream 'gate' in the last 2 hours:")
    assert "'a person climbs the fence' from 4.0 s to 12.0 s" in result["answer"]
    assert [c["segments"] for c in result["citations"]] == [[1, 2], [4]]
    turn = Conversations(service).show_thread(result["thread_id"])["turns"][0]
    assert turn["answer"] == result["answer"]  # kept on the thread like any turn
    none = Conversations(service).ask("gate", "Which alerts went off yesterday?")
    assert none["answer"] == "No alerts fired on stream 'gate' yesterday." and none["citations"] == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("what alerts fired last night?", True),
        ("Were there any alarms today", True),
        ("list the alerts", True),
        ("Is the person alert and awake?", False),
        ("what happens at the gate?", False),
    ],
)
def test_alert_questions_are_told_from_questions_about_the_video(question: str, expected: bool) -> None:
    assert is_alert_question(question) is expected


def test_last_night_is_18_to_6_local_time() -> None:
    now = datetime(2026, 11, 26, 9, 30)
    since, until, phrase = alert_time_scope("what alerts fired last night?", now)
    assert (datetime.fromtimestamp(since), datetime.fromtimestamp(until), phrase) == (
        datetime(2026, 11, 25, 18, 0),
        datetime(2026, 11, 26, 6, 0),
        "last night",
    )
    since, until, _ = alert_time_scope("alerts in the last 90 minutes", now)
    assert until - since == pytest.approx(5400.0)
