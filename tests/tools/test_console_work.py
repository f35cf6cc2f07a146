"""The console's work states in Chromium (Playwright over Debian's chromium, as tests/tools/test_console.py):
the honest timeline (fixed 0-1 axis, the time scope above it, a strip per turn restored on reload),
thinking with elapsed time and cancel, a job's error with the job (dismissable) and its stop button,
upload by file picker then delete with confirmation, the cross-stream search box, "no alerts", a
400 px layout without horizontal overflow, and /docs with no request leaving the server."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx2
import pytest

from .conftest import ServeProcess
from .test_console import browser, shot  # noqa: F401 (the module-scoped browser fixture)


@pytest.fixture(scope="module")
def console_server(serve_memory) -> Iterator[ServeProcess]:
    server = ServeProcess(serve_memory, "--media-root", str(serve_memory.root / "media"))
    yield server
    server.stop()


def open_console(browser, base: str, width: int = 1280):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    return page, errors


def strip_state(page) -> dict:
    return page.evaluate(
        """() => ({
          scope: document.getElementById('scope').textContent,
          cells: [...document.querySelectorAll('#timeline .cell')].map(c => ({
            kind: c.classList.contains('candidate') ? 'candidate' : 'anchor',
            relevance: c.dataset.relevance === '' ? null : Number(c.dataset.relevance),
            height: c.querySelector('.bar').style.height,
          })),
          axis: [...document.querySelectorAll('#axis span')].map(s => s.textContent),
        })"""
    )


def test_timeline_thinking_cancel_and_strips_per_turn_survive_a_reload(browser, console_server):  # noqa: F811
    page, errors = open_console(browser, console_server.base)
    page.click('#streams li[data-name="cam"]')
    page.wait_for_selector("#alerts[data-following] #alert-list li.empty")  # monitoring on, no alert yet
    assert page.inner_text("#alert-list li.empty") == "no alerts"

    # Thinking: visible with its elapsed time while the answer comes, gone after.
    page.fill("#question", "Where is the square?")
    page.click("#ask-button")
    page.wait_for_function("/^thinking… \\d+\\.\\d s$/.test(document.getElementById('thinking-text').textContent)")
    page.wait_for_selector("#messages li[data-done]", timeout=120_000)
    assert page.is_hidden("#thinking")
    first = strip_state(page)
    assert first["axis"] == ["1", "0.5", "0"] and first["scope"] == "time scope: the whole stream"
    assert len(first["cells"]) == 10  # the 40 s stream's segments
    for cell in first["cells"]:  # fixed 0-1 scale: a bar's height is its relevance, not its rank
        if cell["kind"] == "candidate":
            assert cell["height"] == f"{max(1, round(100 * cell['relevance']))}%"
        else:
            assert cell["relevance"] is None and cell["height"] == "4%"

    # A question with a time scope: shown above the strip. The first turn's strip comes back on a click.
    page.fill("#question", "What happens between 0:08 and 0:16?")
    page.click("#ask-button")
    page.wait_for_selector('#messages li[data-turn="1"][data-done]', timeout=120_000)
    second = strip_state(page)
    assert second["scope"].startswith("time scope 0:08–0:16")
    page.click('#messages li[data-turn="0"] .q')
    assert strip_state(page) == first
    # Another thread, then this one again: its turns come back with the last turn's strip.
    thread = page.eval_on_selector("#thread-select", "s => s.value")
    page.select_option("#thread-select", "")
    assert strip_state(page)["cells"] == [] and page.query_selector("#messages li") is None
    page.select_option("#thread-select", thread)
    page.wait_for_selector('#messages li[data-turn="1"].shown', timeout=30_000)
    assert strip_state(page) == second
    # A widened answer says so, with its reason, above its strip (the REST result's widened/widen_reason).
    widened = page.evaluate(
        "scopeText({time_scope: null, widened: true, widen_reason: 'no segment in the asked time scope'})"
    )
    assert widened == "time scope: the whole stream · widened: no segment in the asked time scope"

    # Cancel: the request is dropped, the turn says so and is not counted as one of the thread.
    page.fill("#question", "And then?")
    page.click("#ask-button")
    page.click("#cancel-ask")
    page.wait_for_selector("#messages li .a.cancelled")
    assert page.is_hidden("#thinking") and page.is_enabled("#ask-button")

    # Reload: the stream, its thread and the last turn's strip are back.
    thread = page.eval_on_selector("#thread-select", "s => s.value")
    page.reload()
    page.wait_for_selector('#messages li[data-turn="1"].shown', timeout=30_000)
    assert page.eval_on_selector("#thread-select", "s => s.value") == thread
    assert strip_state(page) == second
    title = page.eval_on_selector("#thread-select", "s => s.selectedOptions[0].textContent")
    assert "2 turns" in title
    shot(page, "work-timeline")
    assert not errors, errors


def test_jobs_upload_delete_and_search(browser, console_server, tmp_path):  # noqa: F811
    from tempo.streaming.synthetic import write_test_video

    page, errors = open_console(browser, console_server.base)
    # A job that cannot read its source retries with its error shown beside it; dismiss hides the
    # error, Stop stops the job. The form is cleared once the job started.
    page.fill("#ingest-stream", "nocam")
    page.fill("#ingest-source", "rtsp://127.0.0.1:9/cam")
    page.click("#ingest-form button")
    page.wait_for_selector("#ingest-status .job-error", timeout=60_000)
    assert page.input_value("#ingest-stream") == "" and page.input_value("#ingest-source") == ""
    assert "retrying" in page.inner_text("#ingest-status .job-error")
    page.click("#ingest-status .job-error button.dismiss")
    page.wait_for_selector("#ingest-status .job-error", state="detached")
    page.click("#ingest-status button.stop")
    page.wait_for_function("document.getElementById('ingest-status').textContent.includes(': stopped')")

    # Upload by the file picker: stored, ingested, listed; deleted after a confirmation (the first
    # confirmation is dismissed: nothing happens).
    video = write_test_video(tmp_path / "Yard clip #1.mp4", duration=8.0, fps=15, size=(160, 96))
    page.set_input_files("#upload-file", str(video))
    page.wait_for_function("document.getElementById('upload-status').textContent.startsWith('uploaded as uploads/')")
    page.wait_for_selector('#streams li[data-name="Yard-clip-1"] [data-state="stored"]', timeout=180_000)
    assert httpx2.get(f"{console_server.base}/v1/streams/Yard-clip-1").json()["segments"] == 2
    page.click('#streams li[data-name="Yard-clip-1"]')
    page.once("dialog", lambda d: d.dismiss())
    page.click("#delete-stream")
    assert httpx2.get(f"{console_server.base}/v1/streams/Yard-clip-1").status_code == 200
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    page.click("#delete-stream")
    page.wait_for_selector('#streams li[data-name="Yard-clip-1"]', state="detached")
    assert "Yard-clip-1" in messages[0] and page.is_hidden("#stream-view")
    assert httpx2.get(f"{console_server.base}/v1/streams/Yard-clip-1").status_code == 404

    # Upload by drag-and-drop on the upload area: the same way, into the stream named in the ingest form.
    dropped = write_test_video(tmp_path / "drop.mp4", duration=4.0, fps=15, size=(160, 96))
    page.fill("#ingest-stream", "dropped")
    page.evaluate(
        """b64 => {
             const data = new DataTransfer();
             const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
             data.items.add(new File([bytes], 'drop.mp4', {type: 'video/mp4'}));
             document.getElementById('upload').dispatchEvent(
               new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
           }""",
        base64.b64encode(dropped.read_bytes()).decode(),
    )
    page.wait_for_function(
        "document.getElementById('upload-status').textContent.startsWith('uploaded as uploads/dropped-')"
    )
    page.wait_for_selector('#streams li[data-name="dropped"] [data-state="stored"]', timeout=180_000)
    assert page.input_value("#ingest-stream") == ""  # the form is ready for the next one

    # Search over every stream: thumbnails, stream and time; a click selects the stream and seeks.
    page.fill("#search-q", "a square")
    page.click("#search-form button")
    page.wait_for_selector("#search-list li[data-stream]")
    items = page.query_selector_all("#search-list li[data-stream]")
    assert {i.get_attribute("data-stream") for i in items} <= {"cam", "dropped"}
    page.wait_for_function(
        "[...document.querySelectorAll('#search-list img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    label = items[0].inner_text()
    assert re.search(r"\d+:\d\d(\.\d)?–\d+:\d\d(\.\d)?", label)
    stream, start = items[0].get_attribute("data-stream"), float(items[0].get_attribute("data-start"))
    items[0].click()
    page.wait_for_function(
        "([s, t]) => document.getElementById('stream-title').textContent === s && "
        "Math.abs(document.getElementById('player').currentTime - t) < 0.01 && "
        "document.getElementById('player').readyState >= 1",
        arg=[stream, start], timeout=30_000,
    )
    shot(page, "work-search")
    assert not errors, errors


def test_narrow_layout_docs_offline_and_favicon(browser, console_server):  # noqa: F811
    page, errors = open_console(browser, console_server.base, width=400)
    page.click('#streams li[data-name="cam"]')
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)
    page.fill("#search-q", "square")
    page.click("#search-form button")
    page.wait_for_selector("#search-list li[data-stream]")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width  # no horizontal overflow
    # A thread whose title (its first question) is long, and the strip of a long stream (600 segments,
    # drawn by the console's own renderTimeline): still no horizontal overflow.
    page.fill("#question", "Where does the square go after it leaves the middle of the picture, and " * 2)
    page.click("#ask-button")
    page.wait_for_selector("#messages li[data-done]", timeout=120_000)
    page.evaluate(
        """() => renderTimeline({segments: Array.from({length: 600}, (_, i) => ({
             kind: i % 7 ? 'anchor' : 'candidate', index: i, start: 4 * i, end: 4 * i + 4,
             tokens: i % 7 ? 4 : 32, relevance: i % 7 ? null : 0.5, gap_before: 0}))})"""
    )
    assert page.eval_on_selector("#timeline", "t => t.classList.contains('dense')")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    player, side = page.eval_on_selector("#player", "e => e.getBoundingClientRect().top"), page.eval_on_selector(
        "#side", "e => e.getBoundingClientRect().top"
    )
    assert player < side  # the player above the panels
    shot(page, "narrow")

    # Durations read the same in the console as in the CLI (format_clock): 119.98 s is 2:00 in both,
    # and so is every tie of the rounding to tenths (2.25 s is 0:02.2 in both).
    from tempo.engine.timeexpr import format_clock

    values = [119.98, 59.96, 3599.97, 0.25, 0.75, 2.25, 12.35, 0.15, 3725.25, 0.05, 4.5, 65.0, 86399.96]
    values += [i / 100 for i in range(0, 20000, 7)] + [i / 4 for i in range(0, 4000, 3)]
    assert page.evaluate("vs => vs.map(clock)", values) == [format_clock(v) for v in values]

    # /docs: Swagger UI from the server itself; any request to another host is recorded and refused.
    docs = browser.new_page()
    outside: list[str] = []
    base = console_server.base

    def guard(route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    docs.route("**/*", guard)
    docs.goto(base + "/docs")
    docs.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "Tempo" in docs.inner_text(".swagger-ui .info .title") and outside == []
    icon = httpx2.get(base + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.eval_on_selector('link[rel="icon"]', "l => l.href") == base + "/static/favicon.svg"
    assert not errors, errors
