// Tempo console: plain JavaScript over the REST API of `tempo serve` (no build step).
// Streams with live state, a player over the clip endpoint, the timeline strip of the last question's
// Adaptive Token Allocation (relevance and kept tokens per segment), and chat with streamed answers
// whose citations seek the player. Times are stream seconds throughout.
"use strict";

const CLIP_MAX = 600; // seconds of stream one clip covers; longer streams get a window around the target
const state = {
  stream: null, streams: [], thread: "", clip: null, job: null, timelines: {},
  token: sessionStorage.getItem("tempo-token") || "",
};
const $ = (id) => document.getElementById(id);

function headers(extra = {}) {
  return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs a bearer token");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return response.status === 204 ? null : response;
}

function clock(seconds) {
  const s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(r).padStart(2, "0")}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

// ----- streams ---------------------------------------------------------------------------------------

async function refreshStreams() {
  let streams;
  try { streams = await (await api("/v1/streams")).json(); } catch (err) { $("ingest-status").textContent = err.message; return; }
  state.streams = streams;
  const list = $("streams");
  list.replaceChildren(...streams.map((s) => {
    const job = s.job && ["running", "retrying"].includes(s.job.state) ? s.job : null;
    const label = job ? job.state === "running" ? "ingesting" : job.state : s.live ? "live" : "stored";
    const item = el("li", { "class": s.name === state.stream ? "selected" : "", "data-name": s.name },
      el("span", { "class": "name" }, s.name), " ",
      el("span", { "class": `state ${job ? job.state : ""}`, "data-state": label }, label),
      el("div", { "class": "meta" },
        `${s.segments} segments · ${s.end == null ? "–" : clock(s.end)} · ${(s.bytes / 1024).toFixed(0)} KiB` +
        (s.job && s.job.error ? ` · ${s.job.error}` : "")));
    item.addEventListener("click", () => selectStream(s.name));
    return item;
  }));
  const job = state.job && streams.map((s) => s.job).find((j) => j && j.id === state.job);
  if (job) $("ingest-status").textContent = `job ${job.id}: ${job.state}, ${job.segments} segments` +
    (job.error ? ` (${job.error})` : "");
  if (state.stream) {
    const s = streams.find((x) => x.name === state.stream);
    if (s) $("stream-state").textContent = `${s.segments} segments, ${s.end == null ? 0 : s.end.toFixed(1)} s` +
      (s.source ? ` · ${s.source}` : "");
  }
}

async function selectStream(name) {
  state.stream = name;
  state.thread = "";
  state.clip = null;
  $("stream-view").hidden = false;
  $("stream-title").textContent = name;
  renderTimeline(state.timelines[name] || []); // the last question's allocation on this stream
  $("messages").replaceChildren();
  await refreshStreams();
  const s = state.streams.find((x) => x.name === name);
  if (s && s.end) loadClip(s.start || 0, s.end, s.start || 0);
  await loadTranscript();
  await loadThreads();
  await loadRules();
}

// ----- player ------------------------------------------------------------------------------------------

function loadClip(lo, hi, target) {
  const player = $("player");
  state.clip = { start: lo, end: hi };
  player.src = `/v1/streams/${encodeURIComponent(state.stream)}/clip?start=${lo.toFixed(3)}&end=${hi.toFixed(3)}`;
  player.addEventListener("loadedmetadata", () => { player.currentTime = target - lo; }, { once: true });
}

function seek(t) {
  const s = state.streams.find((x) => x.name === state.stream);
  const end = s && s.end ? s.end : t + 1;
  const start = s && s.start ? s.start : 0;
  if (state.clip && t >= state.clip.start && t < state.clip.end) {
    $("player").currentTime = t - state.clip.start;
    return;
  }
  const lo = end - start <= CLIP_MAX ? start : Math.max(start, t - CLIP_MAX / 2);
  loadClip(lo, Math.min(end, lo + CLIP_MAX), t);
}

// ----- transcript (subtitles, speech) -----------------------------------------------------------------------

async function loadTranscript() {
  const list = $("transcript");
  let body = { cues: [] };
  try { body = await (await api(`/v1/streams/${encodeURIComponent(state.stream)}/transcript`)).json(); } catch (_) { /* none */ }
  list.replaceChildren(...body.cues.map((c) => {
    const item = el("li", { "data-start": c.start, "data-end": c.end, title: `${c.source}${c.language ? " · " + c.language : ""}` },
      el("span", { "class": "t" }, clock(c.start)), " ", c.text);
    item.addEventListener("click", () => seek(c.start));
    return item;
  }));
  list.hidden = body.cues.length === 0;
}

function highlightCue() {
  if (!state.clip) return;
  const t = state.clip.start + $("player").currentTime;
  for (const li of $("transcript").children) {
    const on = t >= Number(li.dataset.start) && t < Number(li.dataset.end);
    li.classList.toggle("current", on);
  }
}

// ----- timeline strip ------------------------------------------------------------------------------------

function renderTimeline(cells) {
  const strip = $("timeline"), tip = $("tip");
  const scores = cells.filter((c) => c.relevance != null).map((c) => c.relevance);
  const lo = scores.length ? Math.min(...scores) : 0, hi = scores.length ? Math.max(...scores) : 1;
  const maxTokens = Math.max(1, ...cells.map((c) => c.tokens));
  strip.replaceChildren(...cells.map((c) => {
    const kind = c.kind; // "candidate" (recompressed for the question) or "anchor"
    // Height shows relevance among the candidates (anchors sit at the floor), so ATA's choice is visible.
    const rel = c.relevance == null ? 0 : hi - lo < 1e-9 ? 1 : (c.relevance - lo) / (hi - lo);
    const bar = el("div", { "class": "bar" });
    bar.style.height = `${Math.round(12 + 88 * (kind === "candidate" ? rel : 0))}%`;
    bar.style.opacity = String(0.35 + 0.65 * (c.tokens / maxTokens));
    const cell = el("div", {
      "class": `cell ${kind}${c.gap_before > 0 ? " gap-before" : ""}`, role: "listitem",
      "data-index": c.index, "data-start": c.start, "data-end": c.end, "data-tokens": c.tokens,
      "data-relevance": c.relevance == null ? "" : c.relevance,
    }, bar, el("span", { "class": "tokens" }, String(c.tokens)));
    const text = `${clock(c.start)}–${clock(c.end)} · ` +
      (c.relevance == null ? "anchor" : `score ${c.relevance.toFixed(3)}`) + ` · ${c.tokens} ` +
      // open weights: Qwen3-VL visual tokens, and the rendition (frames × size) they bought
      (c.rendition ? `Qwen3-VL tokens (${c.rendition.frames} frames at ${c.rendition.width}×${c.rendition.height})`
        : "tokens") +
      (c.gap_before > 0 ? ` · gap of ${c.gap_before.toFixed(1)} s before` : "");
    cell.addEventListener("mouseenter", () => {
      tip.textContent = text;
      tip.hidden = false;
      tip.style.left = `${Math.max(0, cell.offsetLeft - 40)}px`;
    });
    cell.addEventListener("mouseleave", () => { tip.hidden = true; });
    cell.addEventListener("click", () => seek(c.start));
    return cell;
  }));
}

// ----- chat ------------------------------------------------------------------------------------------------

function citationLinks(citations) {
  return el("div", { "class": "cites" }, ...citations.map((c) => {
    const link = el("a", { "class": "cite", href: "#", "data-t": c.start, title: c.text || "" },
      c.end > c.start ? `${clock(c.start)}–${clock(c.end)}` : clock(c.start));
    link.addEventListener("click", (e) => { e.preventDefault(); seek(Number(c.start)); });
    return link;
  }));
}

function addTurn(question, answer = "", citations = []) {
  const a = el("div", { "class": "a" }, answer);
  const item = el("li", {}, el("div", { "class": "q" }, question), a);
  if (citations.length) item.append(citationLinks(citations));
  $("messages").append(item);
  return { item, a };
}

async function loadThreads() {
  const select = $("thread-select");
  const threads = await (await api(`/v1/threads?stream=${encodeURIComponent(state.stream)}`)).json();
  select.replaceChildren(el("option", { value: "" }, "new thread"),
    ...threads.map((t) => el("option", { value: t.id }, `${t.id} (${t.turns} turns)`)));
  select.value = state.thread;
}

async function showThread(id) {
  state.thread = id;
  $("messages").replaceChildren();
  if (!id) return;
  const thread = await (await api(`/v1/threads/${encodeURIComponent(id)}`)).json();
  for (const t of thread.turns) addTurn(t.question, t.answer, t.citations || []);
}

async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message", data = "", id = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
        else if (line.startsWith("id: ")) id = line.slice(4);
      }
      if (!data && id == null) continue; // a comment (keep-alive)
      yield { event, data: data ? JSON.parse(data) : null, id };
    }
  }
}

async function ask(question) {
  const turn = addTurn(question);
  turn.item.setAttribute("data-pending", "1");
  $("ask-button").disabled = true;
  const path = state.thread ? `/v1/threads/${encodeURIComponent(state.thread)}/ask`
    : `/v1/streams/${encodeURIComponent(state.stream)}/ask`;
  try {
    const response = await api(path, {
      method: "POST", body: JSON.stringify(state.thread ? { question } : { question, new_thread: true }),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    for await (const { event, data } of sseEvents(response)) {
      if (event === "text") turn.a.textContent += data.text;
      else if (event === "allocation") { state.timelines[state.stream] = data.segments; renderTimeline(data.segments); }
      else if (event === "error") { turn.a.textContent = data.detail; turn.a.classList.add("error"); }
      else if (event === "done") {
        turn.a.textContent = data.answer;
        if (data.citations.length) turn.item.append(citationLinks(data.citations));
        state.thread = data.thread_id;
        await loadThreads();
      }
    }
  } catch (err) {
    turn.a.textContent = err.message;
    turn.a.classList.add("error");
  } finally {
    turn.item.removeAttribute("data-pending");
    turn.item.setAttribute("data-done", "1");
    $("ask-button").disabled = false;
  }
}

// ----- alerts (live monitoring) ------------------------------------------------------------------------
// The feed lists recent alerts (GET /v1/alerts), then follows GET /v1/alerts/events (SSE): an alert
// is one item, updated in place by its later events (verified, closed). Acknowledge marks it on the
// server (POST /v1/alerts/{id}/ack). A server without monitoring answers 404: the section stays hidden.

function renderAlert(alert) {
  const list = $("alert-list");
  let item = list.querySelector(`li[data-id="${CSS.escape(alert.id)}"]`);
  if (!item) {
    item = el("li", { "data-id": alert.id });
    list.prepend(item);
  }
  const open = alert.closed_at == null;
  item.className = `${open ? "open" : "closed"}${alert.acked != null ? " acked" : ""}`;
  item.setAttribute("data-state", open ? "open" : "closed");
  item.setAttribute("data-acked", alert.acked != null ? "1" : "");
  const where = el("a", { href: "#", "class": "where" }, `${alert.stream} ${clock(alert.start || 0)}–${clock(alert.end || 0)}`);
  where.addEventListener("click", async (e) => {
    e.preventDefault();
    if (alert.stream !== state.stream) await selectStream(alert.stream);
    seek(alert.start || 0);
  });
  const verified = alert.verified === true ? " · verified" : alert.verified === false ? " · not confirmed" : "";
  const meta = el("div", { "class": "meta" },
    `${alert.rule} · ${open ? "open" : "closed"} · peak ${Number(alert.peak || 0).toFixed(2)}${verified}` +
    (alert.explanation ? ` · ${alert.explanation}` : ""));
  const children = [where, el("div", { "class": "text" }, alert.text || ""), meta];
  if (alert.acked != null) children.push(el("span", { "class": "acked-mark" }, "acknowledged"));
  else {
    const button = el("button", { type: "button", "class": "ack" }, "Acknowledge");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        renderAlert(await (await api(`/v1/alerts/${encodeURIComponent(alert.id)}/ack`, { method: "POST" })).json());
      } catch (err) { button.disabled = false; button.title = err.message; }
    });
    children.push(button);
  }
  item.replaceChildren(...children);
}

// Rules of the selected stream: list, add, remove (POST/DELETE /v1/rules).
async function loadRules() {
  let rules;
  try { rules = await (await api(`/v1/rules?stream=${encodeURIComponent(state.stream)}`)).json(); } catch (_) { return; }
  $("rules").hidden = false;
  $("rule-list").replaceChildren(...rules.map((r) => {
    const remove = el("button", { type: "button", "class": "remove" }, "Remove");
    remove.addEventListener("click", async () => {
      try { await api(`/v1/rules/${encodeURIComponent(r.id)}`, { method: "DELETE" }); } catch (err) { $("rule-status").textContent = err.message; }
      loadRules();
    });
    return el("li", { "data-id": r.id }, el("span", { "class": "rule-text" }, r.text),
      el("span", { "class": "meta" }, ` ${r.id} · enter ${r.enter} · exit ${r.exit == null ? "default" : r.exit} · ` +
        `${r.min_segments} seg · cooldown ${r.cooldown} s `), remove);
  }));
}

async function startAlerts() {
  let after = null;
  for (;;) {
    let response;
    try {
      if (after == null) {
        const first = await fetch("/v1/alerts?limit=50", { headers: headers() });
        if (first.status === 404) return; // no monitoring on this server
        if (first.ok) for (const alert of await first.json()) renderAlert(alert);
      }
      const query = after == null ? "" : `?after=${encodeURIComponent(after)}`;
      response = await fetch(`/v1/alerts/events${query}`, { headers: headers({ Accept: "text/event-stream" }) });
    } catch (_) { response = null; }
    if (response && response.ok) {
      $("alerts").hidden = false;
      $("alerts").setAttribute("data-following", "1");
      try {
        for await (const { event, data, id } of sseEvents(response)) {
          if (id) after = id;
          if (event === "alert" && data) renderAlert(data);
        }
      } catch (_) { /* connection dropped: reconnect below */ }
    } else if (response && response.status === 404) return;
    $("alerts").removeAttribute("data-following");
    await new Promise((r) => setTimeout(r, 2000)); // reconnect, resuming after the last event seen
  }
}

// ----- wiring ------------------------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("tempo-token", state.token);
  // The <video> element cannot send an Authorization header: the clip requests carry a same-site cookie.
  document.cookie = `tempo_token=${encodeURIComponent(state.token)}; path=/; SameSite=Strict`;
  $("token-form").hidden = true;
  refreshStreams();
});

$("ingest-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const stream = $("ingest-stream").value.trim(), source = $("ingest-source").value.trim();
  try {
    const job = await (await api(`/v1/streams/${encodeURIComponent(stream)}/ingest`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ source }),
    })).json();
    state.job = job.id;
    $("ingest-status").textContent = `job ${job.id}: ${job.state}`;
  } catch (err) { $("ingest-status").textContent = err.message; }
  refreshStreams();
});

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("question").value.trim();
  if (!q || !state.stream) return;
  $("question").value = "";
  ask(q);
});

$("rule-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const enter = $("rule-enter").value.trim(), exit = $("rule-exit").value.trim();
  const body = {
    stream: state.stream, text: $("rule-text").value.trim(),
    enter: enter === "auto" ? "auto" : Number(enter), min_segments: Number($("rule-min").value),
  };
  if (exit) body.exit = Number(exit);
  try {
    const rule = await (await api("/v1/rules", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    })).json();
    $("rule-status").textContent = `added ${rule.id}`;
    $("rule-text").value = "";
  } catch (err) { $("rule-status").textContent = err.message; }
  loadRules();
});

$("thread-select").addEventListener("change", (e) => showThread(e.target.value));
$("player").addEventListener("timeupdate", highlightCue);
$("player").addEventListener("seeked", highlightCue);

refreshStreams();
setInterval(refreshStreams, 2000);
startAlerts();
