"""`tempo rules` and `tempo alerts` on a real Redis: output, JSON, one-line errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from tempo.tools.cli import main


@pytest.fixture()
def tempo(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable:
    monkeypatch.setenv("TEMPO_REDIS_URL", redis_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_rules_add_list_remove(tempo: Callable) -> None:
    code, out, _ = tempo("rules", "add", "gate", "a person climbs the fence", "--enter", "0.7", "--exit", "0.4")
    assert code == 0 and out.startswith("added r1  gate  enter=0.7 exit=0.4 min-segments=2 cooldown=60s")
    code, out, _ = tempo("rules", "add", "gate", "smoke", "--enter", "auto", "--verify", "--json")
    rule = json.loads(out)
    assert (rule["id"], rule["enter"], rule["exit"], rule["verify"]) == ("r2", "auto", None, True)
    _, out, _ = tempo("rules", "list", "gate", "--json")
    assert [r["id"] for r in json.loads(out)["rules"]] == ["r1", "r2"]
    code, out, _ = tempo("rules", "remove", "r1")
    assert code == 0 and out.startswith("removed r1")
    _, out, _ = tempo("rules", "list")
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("r2")]


def test_rules_add_warns_of_a_stream_not_there_yet_and_a_webhook_nothing_signs(
    tempo: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted (the rule waits for its stream), with one warning line each on stderr."""
    monkeypatch.delenv("TEMPO_WEBHOOK_SECRET", raising=False)
    code, out, err = tempo("rules", "add", "later", "smoke", "--webhook", "http://hub.example/hook")
    assert code == 0 and out.startswith("added r1  later  ")
    assert err.splitlines() == [
        "warning: there is no stream 'later' yet: the rule waits for it and applies from its first segment",
        "warning: this rule's webhook is not delivered until then: set TEMPO_WEBHOOK_SECRET to the secret shared "
        "with the webhook receivers; deliveries are signed with it",
    ]
    monkeypatch.setenv("TEMPO_WEBHOOK_SECRET", "a-secret-of-enough-length-0123")
    code, _, err = tempo("rules", "add", "later", "fire", "--webhook", "http://hub.example/hook")
    assert code == 0 and err.splitlines() == [
        "warning: there is no stream 'later' yet: the rule waits for it and applies from its first segment"
    ]


ADD = ("rules", "add", "gate", "x")
HELP = " (see `tempo rules add --help`)\n"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        ((*ADD, "--enter", "2"), "tempo rules add: error: argument --enter: input should be less than or equal to 1 "
         "(got '2')" + HELP),
        ((*ADD, "--enter", "nan"), "tempo rules add: error: argument --enter: input should be a finite number "
         "(got 'nan')" + HELP),
        ((*ADD, "--webhook", "ftp://h/x"), "tempo rules add: error: argument --webhook: expected an http:// or "
         "https:// URL (got 'ftp://h/x')" + HELP),
        ((*ADD, "--enter", "0.5", "--exit", "0.6"), "tempo: error: --exit 0.6 is above --enter 0.5; an episode "
         "closes below exit\n"),
        (("rules", "remove", "r7"), "tempo: error: no rule 'r7'; rules: none\n"),
        (("alerts", "ack", "gate:r1:0"), "tempo: error: no alert 'gate:r1:0'; list them with `tempo alerts`\n"),
        (("alerts", "--since", "soon"), "tempo alerts: error: argument --since: 'soon' is not a time: use Unix "
         "seconds, an ISO 8601 time or a duration such as 30m, 12h, 2d (see `tempo alerts --help`)\n"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_a_non_zero_exit(tempo: Callable, args: tuple[str, ...], stderr: str) -> None:
    code, out, err = tempo(*args)
    assert (code, out, err) == (2, "", stderr)


def test_alerts_list_filter_and_ack(tempo: Callable, commit_alert_scores: Callable) -> None:
    tempo(
        "rules", "add", "gate", "a person climbs the fence", "--enter", "0.8", "--min-segments", "1", "--cooldown", "0"
    )
    commit_alert_scores("gate", [[0.1], [0.9], [0.95], [0.1], [0.9]], wallclock=time.time() - 60)
    code, out, _ = tempo("alerts", "gate")
    lines = out.splitlines()
    assert code == 0 and [line.split()[:2] for line in lines] == [["gate:r1:1", "closed"], ["gate:r1:4", "open"]]
    assert "gate 0:04–0:12  2 seg  peak 0.950" in lines[0]  # stream times as every output writes them
    _, out, _ = tempo("alerts", "--since", "1h", "--json")
    assert [a["id"] for a in json.loads(out)["alerts"]] == ["gate:r1:1", "gate:r1:4"]
    _, out, _ = tempo("alerts", "--since", str(time.time() + 10))
    assert out == "no alerts in that time\n"
    code, out, _ = tempo("alerts", "ack", "gate:r1:1")
    assert code == 0 and out.startswith("acknowledged gate:r1:1  closed acked")
    _, out, _ = tempo("alerts", "deliveries", "--json")
    assert json.loads(out) == {"pending": [], "dead": [], "delivered": []}
