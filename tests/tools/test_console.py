"""The web console in a real browser: Playwright for Python driving Debian's chromium (installed by the
Makefile's `browser` step; Playwright never downloads a browser here).

Monitoring first: rules of a stream added and removed in the console, an alert raised by a real
ingest arriving in the feed without a reload, acknowledged with a click. Then one scenario, as a user
would do it: open the console, start an ingest of a generated video, watch the stream appear, ask a
question, see the answer stream in, see the timeline strip with one cell per segment (hover shows
time, score and tokens), click a citation and check that the player's currentTime is the cited time.
Screenshots go to $TEMPO_TEST_ARTIFACTS (default .test-artifacts/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx2
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("TEMPO_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / ".test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium) when run as root")
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_console_alerts_arrive_live_and_are_acknowledged(browser, serve_server):
    """Rules of the selected stream are added and removed in the console; an alert raised by a real
    ingest (its rule's thresholds make an episode certain: scores are >= 0) appears in the feed
    without a reload, and acknowledging it marks it, on the page and on the server."""
    base = serve_server.base
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    page.wait_for_selector("#alerts[data-following]", timeout=30_000)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Rules of the selected stream: add one, see it listed (and stored), remove it.
    page.click('#streams li[data-name="cam"]')
    page.wait_for_selector("#rules:not([hidden])")
    page.fill("#rule-text", "a person climbs the fence")
    page.fill("#rule-enter", "0.9")
    page.click("#rule-form button")
    page.wait_for_selector("#rule-list li[data-id]")
    rule_id = page.get_attribute("#rule-list li[data-id]", "data-id")
    stored = httpx2.get(f"{base}/v1/rules", params={"stream": "cam"}).json()
    assert [(r["id"], r["text"], r["enter"]) for r in stored] == [(rule_id, "a person climbs the fence", 0.9)]
    page.fill("#rule-text", "too eager")
    page.fill("#rule-enter", "1.5")
    page.click("#rule-form button")
    page.wait_for_function("document.getElementById('rule-status').textContent.includes(\"'enter'\")")
    page.click(f'#rule-list li[data-id="{rule_id}"] button.remove')
    page.wait_for_selector("#rule-list li", state="detached")
    assert httpx2.get(f"{base}/v1/rules", params={"stream": "cam"}).json() == []

    # A rule that certainly fires, then an ingest started from the console: the alert arrives live.
    rule = {"stream": "watched", "text": "a square moves", "enter": 0.0, "exit": 0.0, "min_segments": 1}
    assert httpx2.post(f"{base}/v1/rules", json=rule).status_code == 201
    assert page.query_selector_all("#alert-list li[data-id]") == []
    assert page.inner_text("#alert-list li.empty") == "no alerts"  # the placeholder, until the first alert
    page.fill("#ingest-stream", "watched")
    page.fill("#ingest-source", "walk.mp4")
    page.click("#ingest-form button")
    page.wait_for_selector("#alert-list li[data-id]", timeout=180_000)
    assert page.evaluate("window.__sameDocument") is True
    alert_id = page.get_attribute("#alert-list li[data-id]", "data-id")
    (alert,) = httpx2.get(f"{base}/v1/alerts", params={"stream": "watched"}).json()
    assert alert["id"] == alert_id and alert.get("acked") is None
    item = f'#alert-list li[data-id="{alert_id}"]'
    assert "a square moves" in page.inner_text(item)
    assert page.get_attribute(item, "data-acked") == ""

    page.click(f"{item} button.ack")
    page.wait_for_selector(f'{item}[data-acked="1"] .acked-mark')
    assert page.query_selector(f"{item} button.ack") is None
    assert httpx2.get(f"{base}/v1/alerts/{alert_id}").json()["acked"] is not None
    page.wait_for_selector('#streams li[data-name="watched"] [data-state="stored"]', timeout=180_000)
    shot(page, "alerts")
    assert not errors, errors


def test_console_ingest_ask_timeline_and_citation_seek(browser, serve_server, serve_memory):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(serve_server.base + "/")

    # Start an ingest of a file under the media root; the stream appears and its job finishes.
    page.fill("#ingest-stream", "console")
    page.fill("#ingest-source", "walk.mp4")
    page.click("#ingest-form button")
    page.wait_for_selector('#streams li[data-name="console"]', timeout=30_000)
    page.wait_for_selector('#streams li[data-name="console"] [data-state="stored"]', timeout=180_000)
    segments = httpx2.get(f"{serve_server.base}/v1/streams/console").json()["segments"]
    assert segments == 5
    page.click('#streams li[data-name="console"]')
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(20.0, abs=0.05)

    # Ask: the answer streams in (its text grows while the turn is still pending), then the timeline.
    page.evaluate(
        """() => {
          window.__growth = [];
          new MutationObserver(() => {
            const li = document.querySelector('#messages li[data-pending]');
            if (li) window.__growth.push(li.querySelector('.a').textContent.length);
          }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.fill("#question", "Where is the square?")
    page.click("#ask-button")
    page.wait_for_selector("#messages li[data-done]", timeout=120_000)
    growth = page.evaluate("window.__growth")
    assert len({n for n in growth if n > 0}) >= 2, growth  # more than one piece arrived before the end
    answer = page.inner_text("#messages li[data-done] .a")
    assert answer.strip() and "error" not in page.get_attribute("#messages li[data-done] .a", "class")

    cells = page.query_selector_all("#timeline .cell")
    assert len(cells) == segments  # one cell per segment
    kinds = [c.get_attribute("class") for c in cells]
    assert all(("candidate" in k) != ("anchor" in k) for k in kinds)
    starts = [float(c.get_attribute("data-start")) for c in cells]
    assert starts == [0.0, 4.0, 8.0, 12.0, 16.0]
    cells[2].hover()
    tip = page.inner_text("#tip")
    assert tip.startswith("0:08–0:12 · ") and "tokens" in tip
    shot(page, "answer")

    # Citations seek the player. The tiny model's answers rarely name a time, so the thread also gets a
    # stored turn whose answer cites 12 s (citations parsed by the agent's own cite_answer), then the
    # console opens that thread and the user clicks the citation.
    import redis
    from tempo.agent.threads import ThreadStore
    from tempo.engine.citations import cite as cite_answer

    thread_id = page.eval_on_selector("#thread-select", "s => s.value")
    assert thread_id
    said = {"text": "the square is in the middle", "start": 12.5, "end": 14.0, "source": "srt", "language": "en"}
    spans = [{"index": i, "start": s, "end": s + 4.0, "cues": [said] if i == 3 else []} for i, s in enumerate(starts)]
    text = "The square is in the middle at 0:13, and leaves from 16 s to 18 s."
    citations = [c.to_dict() for c in cite_answer(text, spans)]
    assert [c["start"] for c in citations] == [13.0, 16.0]
    assert [c["cue"] for c in citations] == [said, None]  # the first relies on a said line
    threads = ThreadStore(redis.Redis.from_url(serve_memory.url))
    threads.append_turn(thread_id, "When is the square in the middle?", "When is the square in the middle?", text,
                        citations)
    page.click('#streams li[data-name="console"]')  # reopen the stream: threads reload
    page.wait_for_function(
        "id => [...document.querySelectorAll('#thread-select option')].some(o => o.value === id)", arg=thread_id
    )
    page.select_option("#thread-select", thread_id)
    page.wait_for_selector("a.cite")
    live_cites = page.query_selector_all("a.cite")
    assert [float(a.get_attribute("data-t")) for a in live_cites][-2:] == [13.0, 16.0]
    assert live_cites[-2].get_attribute("title") == "“the square is in the middle” (0:12.5)"  # on hover
    for link, cited in zip(live_cites[-2:], (13.0, 16.0), strict=True):
        link.click()
        page.wait_for_function("t => Math.abs(document.getElementById('player').currentTime - t) < 1e-6", arg=cited)
        assert page.evaluate("document.getElementById('player').currentTime") == cited
    page.wait_for_function("!document.getElementById('player').seeking")
    path = shot(page, "citation")
    assert not errors, errors

    # The README's picture of the console (docs/console.png) is this screenshot when asked for.
    if os.environ.get("TEMPO_UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(path, Path(__file__).resolve().parents[2] / "docs" / "console.png")


def test_console_transcript_lists_cues_seeks_and_highlights(browser, serve_server, serve_memory):
    """The transcript under the player: the stream's cues listed, a click seeks, the current cue is highlighted."""
    from tempo.engine.text_track import add_text_track
    from tempo.memory import RedisMemoryStore
    from tempo.streaming.subtitles import Cue, CueTrack

    store = RedisMemoryStore.connect(serve_memory.url)
    add_text_track(store, "cam", CueTrack([Cue(2.0, 3.5, "good morning", "srt", "en"),
                                          Cue(21.0, 23.0, "a blue elephant", "srt", "en")]))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(serve_server.base + "/")
    page.wait_for_selector('#streams li[data-name="cam"]', timeout=30_000)
    page.click('#streams li[data-name="cam"]')
    page.wait_for_selector("#transcript li", timeout=30_000)
    items = page.query_selector_all("#transcript li")
    assert [i.inner_text() for i in items] == ["0:02 good morning", "0:21 a blue elephant"]
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)
    items[1].click()
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 21.0) < 0.3", timeout=30_000)
    page.wait_for_selector("#transcript li.current", timeout=10_000)
    assert page.inner_text("#transcript li.current") == "0:21 a blue elephant"
    shot(page, "transcript")
    assert errors == []
