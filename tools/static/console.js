// Tempo console: plain JavaScript over the REST API of `tempo serve` (no build step).
// Streams with live state (stop an ingest, delete a stream, upload a video), a player over the clip
// endpoint, the timeline strip of each answer's Adaptive Token Allocation (relevance on a fixed 0-1
// scale and kept tokens per segment, with the time scope above it), chat with streamed answers whose
// citations seek the player, a search over every stream, and the alert feed. Times are stream
// seconds throughout, written by `clock` (the CLI's rule: M:SS, tenths when not whole, rounded first).
"use strict";

const CLIP_MAX = 600; // seconds of stream one clip covers; longer streams get a window around the target
const state = {
  stream: null, streams: [], thread: "", clip: null, job: null, asking: null, restored: false,
  token: sessionStorage.getItem("tempo-token") || "",
};
const $ = (id) => document.getElementById(id);

function saved(key, fallback) {
  try { const v = localStorage.getItem(key); return v == null ? fallback : JSON.parse(v); } catch (_) { return fallback; }
}
function keep(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch (_) { /* storage full or off: not kept */ }
}

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

// Tenths in `seconds` as Python's round(seconds, 1) counts them (the CLI's format_clock): the nearest
// to the exact value (toFixed), and an exact tie, which only x.25 and x.75 can be, to the even tenth.
function tenthsOf(seconds) {
  const x = Number(seconds);
  if (Number.isInteger(x * 4) && (x * 4) % 2 !== 0) { const t = Math.floor(x * 10); return t % 2 === 0 ? t : t + 1; }
  return Math.round(Number(x.toFixed(1)) * 10);
}

// Stream seconds as M:SS(.s) or H:MM:SS(.s), rounded to 0.1 s first (119.98 s is 2:00), as the CLI writes them.
function clock(seconds) {
  const tenths = tenthsOf(seconds);
  const h = Math.floor(tenths / 36000), m = Math.floor((tenths % 36000) / 600), t = tenths % 600;
  const ss = t % 10 ? (t / 10).toFixed(1).padStart(4, "0") : String(t / 10).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function newThreadId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8)); // works on plain http too (randomUUID does not)
  return "c" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ----- streams ---------------------------------------------------------------------------------------

function jobError(job) {
  // A job's error is shown with the job while it failed or retries, until dismissed; a job that runs
  // again, or finished, shows none (an old error does not stick to a healthy stream).
  if (!job || !job.error || !["failed", "retrying"].includes(job.state)) return null;
  if (saved("tempo:dismissed", []).includes(job.id)) return null;
  const dismiss = el("button", { type: "button", "class": "dismiss", title: "dismiss" }, "×");
  dismiss.addEventListener("click", (e) => {
    e.stopPropagation();
    keep("tempo:dismissed", [...saved("tempo:dismissed", []).slice(-200), job.id]);
    refreshStreams();
  });
  return el("div", { "class": "job-error", "data-job": job.id }, el("span", {}, `job ${job.id} ${job.state}: ${job.error}`), dismiss);
}

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
        `${s.segments} segments · ${s.end == null ? "–" : clock(s.end)} · ${(s.bytes / 1024).toFixed(0)} KiB`));
    const error = jobError(s.job);
    if (error) item.append(error);
    item.addEventListener("click", () => selectStream(s.name));
    return item;
  }));
  let job = state.job && streams.map((s) => s.job).find((j) => j && j.id === state.job);
  if (state.job && !job) { // a job whose stream has no segment yet (a camera that never answered)
    try { job = await (await api(`/v1/jobs/${encodeURIComponent(state.job)}`)).json(); } catch (_) { job = null; }
  }
  if (job) { // the job started here: its state, and its error while it failed or retries
    const error = jobError(job), parts = [`job ${job.id}: ${job.state}, ${job.segments} segments `];
    if (["running", "retrying"].includes(job.state)) {
      const stop = el("button", { type: "button", "class": "stop" }, "Stop");
      stop.addEventListener("click", () => stopJob(job.id, stop));
      parts.push(stop);
    }
    $("ingest-status").replaceChildren(...parts, ...(error ? [error] : []));
  }
  if (state.stream) {
    const s = streams.find((x) => x.name === state.stream);
    if (s) {
      $("stream-state").textContent = `${s.segments} segments, ${s.end == null ? "–" : clock(s.end)}` +
        (s.source ? ` · ${s.source}` : "");
      const active = s.job && ["running", "retrying"].includes(s.job.state);
      $("stop-job").hidden = !active;
      $("stop-job").dataset.job = active ? s.job.id : "";
    }
  }
  if (!state.restored) { // the page reloaded: the stream (and its thread and strip) selected before
    state.restored = true;
    const last = saved("tempo:stream", null);
    if (last && streams.some((x) => x.name === last) && !state.stream) selectStream(last);
  }
}

async function selectStream(name) {
  state.stream = name;
  state.thread = saved(`tempo:thread:${name}`, "");
  state.clip = null;
  keep("tempo:stream", name);
  $("stream-view").hidden = false;
  $("stream-title").textContent = name;
  renderTimeline(null);
  $("messages").replaceChildren();
  await refreshStreams();
  const s = state.streams.find((x) => x.name === name);
  if (s && s.end) loadClip(s.start || 0, s.end, s.start || 0);
  await loadTranscript();
  await loadThreads();
  // The thread selected last time, with its turns and strips; not over a question asked meanwhile.
  if (state.thread && !state.asking) await showThread(state.thread);
  await loadRules();
}

// ----- player ------------------------------------------------------------------------------------------

// A clip still being rendered arrives as one stream (no Range), which the player cannot seek in; once
// all of it has arrived the server holds the finished file, and loading it again gives a seekable one.
function loadClip(lo, hi, target, again = false) {
  const player = $("player");
  const clip = { start: lo, end: hi, target };
  state.clip = clip;
  const url = `/v1/streams/${encodeURIComponent(state.stream)}/clip?start=${lo.toFixed(3)}&end=${hi.toFixed(3)}`;
  player.src = url;
  const onProgress = () => {
    const b = player.buffered;
    if (state.clip !== clip || !b.length || b.end(b.length - 1) < player.duration - 0.05) return;
    player.removeEventListener("progress", onProgress);
    if (!canSeek(clip.target - lo)) loadClip(lo, hi, clip.target, true); // now the finished file
  };
  // The target may move before the clip's metadata arrives (a seek right after selecting the stream).
  player.addEventListener("loadedmetadata", () => {
    if (canSeek(clip.target - lo)) player.currentTime = clip.target - lo;
    else if (!again) { player.addEventListener("progress", onProgress); onProgress(); }
  }, { once: true });
}

function canSeek(t) {
  const r = $("player").seekable;
  for (let i = 0; i < r.length; i++) if (r.start(i) <= t && t <= r.end(i)) return true;
  return t === 0;
}

async function seek(t, stream = null) {
  if (stream && stream !== state.stream) await selectStream(stream);
  const s = state.streams.find((x) => x.name === state.stream);
  const end = s && s.end ? s.end : t + 1;
  const start = s && s.start ? s.start : 0;
  if (state.clip && t >= state.clip.start && t < state.clip.end) {
    state.clip.target = t;
    if ($("player").readyState >= 1 && canSeek(t - state.clip.start)) $("player").currentTime = t - state.clip.start;
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

// The strip of one answer: bar height is relevance on a fixed 0-1 scale (the axis beside it is
// labelled), anchors (not scored for the question) sit low in grey, opacity follows kept tokens. Above
// it, the time scope the answer looked at and any widening with its reason.
function renderTimeline(strip) {
  const cells = strip ? strip.segments || [] : [];
  const bar = $("timeline"), tip = $("tip");
  $("scope").textContent = strip ? scopeText(strip) : "";
  $("scope").setAttribute("data-widened", strip && strip.widened ? "1" : "");
  const maxTokens = Math.max(1, ...cells.map((c) => c.tokens));
  const manyStreams = new Set(cells.map((c) => c.stream)).size > 1; // a cross-stream turn names each cell's stream
  // open weights: tokens are Qwen3-VL visual tokens (the turn's tokens_unit), each bought as a rendition
  const openWeights = (strip && strip.tokens_unit === "qwen3-vl visual tokens") || cells.some((c) => c.rendition);
  $("tokens-unit").textContent = openWeights ? "Qwen3-VL visual tokens" : "tokens";
  // More cells than fit as 4 px bars with a gap: drawn without gaps or numbers (console.css `.dense`).
  bar.classList.toggle("dense", cells.length * 4 > Math.max(1, bar.clientWidth));
  bar.replaceChildren(...cells.map((c) => {
    const kind = c.kind; // "candidate" (recompressed for the question) or "anchor"
    const rel = c.relevance == null ? null : Math.min(1, Math.max(0, c.relevance));
    const fill = el("div", { "class": "bar" });
    fill.style.height = rel == null ? "4%" : `${Math.max(1, Math.round(100 * rel))}%`;
    fill.style.opacity = String(0.35 + 0.65 * (c.tokens / maxTokens));
    const cell = el("div", {
      "class": `cell ${kind}${c.gap_before > 0 ? " gap-before" : ""}`, role: "listitem",
      "data-index": c.index, "data-start": c.start, "data-end": c.end, "data-tokens": c.tokens,
      "data-relevance": c.relevance == null ? "" : c.relevance,
    }, fill, el("span", { "class": "tokens" }, String(c.tokens)));
    const text = (manyStreams && c.stream ? `${c.stream} ` : "") + `${clock(c.start)}–${clock(c.end)} · ` +
      (c.relevance == null ? "anchor" : `relevance ${c.relevance.toFixed(3)}`) + ` · ${c.tokens} ` +
      (c.rendition ? `Qwen3-VL tokens (${c.rendition.frames} frames at ${c.rendition.width}×${c.rendition.height})`
        : openWeights ? "Qwen3-VL tokens (left out: less than its smallest rendition)" : "tokens") +
      (c.gap_before > 0 ? ` · gap of ${clock(c.gap_before)} before` : "");
    cell.addEventListener("mouseenter", () => {
      tip.textContent = text;
      tip.hidden = false;
      tip.style.left = `${Math.max(0, cell.offsetLeft - 40)}px`;
    });
    cell.addEventListener("mouseleave", () => { tip.hidden = true; });
    cell.addEventListener("click", () => seek(c.start, c.stream));
    return cell;
  }));
}

function scopeText(strip) {
  const scope = strip.time_scope;
  let text = scope ? `time scope ${clock(scope.start)}–${clock(scope.end)}` +
    (scope.phrase ? ` (${scope.phrase})` : "") : "time scope: the whole stream";
  if (strip.widened) text += ` · widened: ${strip.widen_reason || "the scope held too little"}`;
  return text;
}

// Strips are kept per turn (localStorage, by thread id and turn number), so a thread selected again,
// or the page reloaded, shows each turn's own strip.
function stripOf(result) {
  return { segments: result.segments || [], tokens_unit: result.tokens_unit || null,
    time_scope: result.time_scope || null,
    widened: Boolean(result.widened), widen_reason: result.widen_reason || null };
}

function saveStrip(thread, turn, strip) {
  if (!thread) return;
  const strips = saved(`tempo:strips:${thread}`, {});
  strips[turn] = strip;
  keep(`tempo:strips:${thread}`, strips);
}

function showTurn(turn) {
  const strips = state.thread ? saved(`tempo:strips:${state.thread}`, {}) : {};
  for (const li of $("messages").children) li.classList.toggle("shown", Number(li.dataset.turn) === turn);
  renderTimeline(strips[turn] || null);
}

// ----- chat ------------------------------------------------------------------------------------------------

function citationLinks(citations) {
  return el("div", { "class": "cites" }, ...citations.map((c) => {
    const span = c.end > c.start ? `${clock(c.start)}–${clock(c.end)}` : clock(c.start);
    const link = el("a", { "class": "cite", href: "#", "data-t": c.start, title: c.cue ? `“${c.cue.text}” (${clock(c.cue.start)})` : (c.text || "") },
      c.stream && c.stream !== state.stream ? `${c.stream} ${span}` : span);
    link.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); seek(Number(c.start), c.stream); });
    return link;
  }));
}

function addTurn(question, answer = "", citations = []) {
  const a = el("div", { "class": "a" }, answer);
  const turn = $("messages").querySelectorAll("li[data-turn]").length; // the thread's turn number
  const item = el("li", { "data-turn": String(turn) }, el("div", { "class": "q" }, question), a);
  if (citations.length) item.append(citationLinks(citations));
  item.addEventListener("click", () => { if (item.hasAttribute("data-turn")) showTurn(turn); }); // its strip
  $("messages").append(item);
  return { item, a, turn };
}

function when(value) {
  // last_turn_at: Unix seconds (or an ISO time); shown in the browser's local time.
  if (value == null || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

async function loadThreads() {
  const select = $("thread-select");
  let threads = [];
  try { threads = await (await api(`/v1/threads?stream=${encodeURIComponent(state.stream)}`)).json(); } catch (_) { /* shown elsewhere */ }
  select.replaceChildren(el("option", { value: "" }, "new thread"), ...threads.map((t) => {
    const title = t.title || t.id;
    const last = when(t.last_turn_at);
    return el("option", { value: t.id, title: t.id },
      `${title.length > 60 ? title.slice(0, 59) + "…" : title} · ${t.turns} turn${t.turns === 1 ? "" : "s"}` +
      (last ? ` · ${last}` : ""));
  }));
  if (state.thread && !state.asking && !threads.some((t) => t.id === state.thread)) state.thread = ""; // gone
  select.value = state.thread;
}

async function showThread(id) {
  state.thread = id;
  keep(`tempo:thread:${state.stream}`, id);
  $("messages").replaceChildren();
  renderTimeline(null);
  if (!id) return;
  let thread;
  try { thread = await (await api(`/v1/threads/${encodeURIComponent(id)}`)).json(); } catch (_) { return; }
  for (const t of thread.turns) addTurn(t.question, t.answer, t.citations || []);
  if (thread.turns.length) showTurn(thread.turns.length - 1);
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

function thinking(on) {
  clearInterval(state.asking && state.asking.timer);
  $("thinking").hidden = !on;
  if (!on) return;
  const began = performance.now();
  const tick = () => { $("thinking-text").textContent = `thinking… ${((performance.now() - began) / 1000).toFixed(1)} s`; };
  tick();
  state.asking.timer = setInterval(tick, 100);
}

async function ask(question) {
  const turn = addTurn(question);
  turn.item.setAttribute("data-pending", "1");
  $("ask-button").disabled = true;
  // A new thread gets its id here, so it exists whatever the server does with one-shot questions.
  if (!state.thread) { state.thread = newThreadId(); keep(`tempo:thread:${state.stream}`, state.thread); }
  const thread = state.thread, stream = state.stream;
  const controller = new AbortController();
  state.asking = { controller, timer: null };
  thinking(true);
  try {
    const response = await api(`/v1/streams/${encodeURIComponent(stream)}/ask`, {
      method: "POST", body: JSON.stringify({ question, thread_id: thread }), signal: controller.signal,
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    for await (const { event, data } of sseEvents(response)) {
      if (event === "text") turn.a.textContent += data.text;
      else if (event === "allocation") renderTimeline({ segments: data.segments });
      else if (event === "error") { turn.a.textContent = data.detail; turn.a.classList.add("error"); }
      else if (event === "done") {
        turn.a.textContent = data.answer;
        if (data.citations.length) turn.item.append(citationLinks(data.citations));
        saveStrip(data.thread_id || thread, turn.turn, stripOf(data));
        if (data.thread_id && state.stream === stream) state.thread = data.thread_id;
        if (state.stream === stream) showTurn(turn.turn);
        await loadThreads();
      }
    }
  } catch (err) {
    const cancelled = controller.signal.aborted;
    turn.a.textContent = cancelled ? "cancelled" : err.message;
    turn.a.classList.add(cancelled ? "cancelled" : "error");
    turn.item.removeAttribute("data-turn"); // not a turn of the thread
  } finally {
    thinking(false);
    state.asking = null;
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
    const empty = list.querySelector("li.empty"); // the "no alerts" placeholder
    if (empty) empty.remove();
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
    seek(alert.start || 0, alert.stream);
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
    $("ingest-form").reset(); // started: the form is ready for the next one
  } catch (err) { $("ingest-status").textContent = err.message; }
  refreshStreams();
});

// ----- stop the ingest, delete the stream, cancel a question -------------------------------------------------

async function stopJob(job, button) {
  button.disabled = true;
  try { await api(`/v1/jobs/${encodeURIComponent(job)}/stop`, { method: "POST" }); } catch (err) { button.title = err.message; }
  button.disabled = false;
  refreshStreams();
}

$("stop-job").addEventListener("click", () => { if ($("stop-job").dataset.job) stopJob($("stop-job").dataset.job, $("stop-job")); });

$("delete-stream").addEventListener("click", async () => {
  const name = state.stream;
  if (!name || !confirm(`Delete the stream ${name} and everything its memory holds? This cannot be undone.`)) return;
  try {
    await api(`/v1/streams/${encodeURIComponent(name)}`, { method: "DELETE" });
  } catch (err) { $("stream-state").textContent = err.message; return; }
  localStorage.removeItem(`tempo:thread:${name}`);
  if (saved("tempo:stream", null) === name) localStorage.removeItem("tempo:stream");
  state.stream = null;
  $("stream-view").hidden = true;
  $("player").removeAttribute("src");
  refreshStreams();
});

$("cancel-ask").addEventListener("click", () => { if (state.asking) state.asking.controller.abort(); });

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
