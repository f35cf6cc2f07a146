// Tempo console, its tools beside the stream view: upload (drag-and-drop or pick, with progress) and the
// search over every stream. Loaded after console.js, whose helpers ($, api, el, clock, seek, ...) it uses.
"use strict";

// ----- upload: drag-and-drop or pick; streamed to POST /v1/streams/{s}/upload, then ingested -------------

function uploadStreamName(file) {
  const given = $("ingest-stream").value.trim();
  if (given) return given;
  const base = file.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return base.slice(0, 128) || "upload";
}

function upload(file) {
  const status = $("upload-status"), stream = uploadStreamName(file);
  const xhr = new XMLHttpRequest(); // fetch has no upload progress
  xhr.open("POST", `/v1/streams/${encodeURIComponent(stream)}/upload`);
  for (const [k, v] of Object.entries(headers({ "Content-Type": "application/octet-stream" }))) xhr.setRequestHeader(k, v);
  const mb = (n) => (n / 1e6).toFixed(1);
  xhr.upload.onprogress = (e) => {
    status.textContent = `uploading ${file.name} to ${stream}: ${mb(e.loaded)} of ${mb(file.size)} MB` +
      (file.size ? ` (${Math.floor((100 * e.loaded) / file.size)} %)` : "");
  };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 202) {
      state.job = body.id;
      status.textContent = `uploaded as ${body.upload.file}; ingest job ${body.id}: ${body.state}`;
      $("upload").setAttribute("data-done", body.id);
      $("ingest-form").reset();
    } else status.textContent = `upload refused: ${body.detail || xhr.status}`;
    $("upload-file").value = "";
    refreshStreams();
  };
  xhr.onerror = () => { status.textContent = "upload failed: the connection was lost"; };
  status.textContent = `uploading ${file.name} to ${stream}…`;
  xhr.send(file);
}

$("upload-file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
for (const name of ["dragenter", "dragover"]) {
  $("upload").addEventListener(name, (e) => { e.preventDefault(); $("upload").classList.add("over"); });
}
$("upload").addEventListener("dragleave", () => $("upload").classList.remove("over"));
$("upload").addEventListener("drop", (e) => {
  e.preventDefault();
  $("upload").classList.remove("over");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});

// ----- search over every stream (POST /v1/search without `streams`) -----------------------------------------

$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const query = $("search-q").value.trim();
  if (!query) return;
  const list = $("search-list");
  $("search-results").hidden = false;
  list.replaceChildren(el("li", { "class": "empty" }, "searching…"));
  let found;
  try {
    found = await (await api("/v1/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query, top_k: 8 }),
    })).json();
  } catch (err) { list.replaceChildren(el("li", { "class": "empty" }, err.message)); return; }
  if (!found.moments.length) { list.replaceChildren(el("li", { "class": "empty" }, "nothing found")); return; }
  list.replaceChildren(...found.moments.map((m) => {
    const thumb = el("img", { alt: `${m.stream} at ${clock(m.start)}`, loading: "lazy",
      src: `/v1/streams/${encodeURIComponent(m.stream)}/frame?t=${m.start.toFixed(3)}` });
    const item = el("li", { "data-stream": m.stream, "data-start": m.start }, thumb,
      el("span", {}, el("b", {}, m.stream), ` ${clock(m.start)}–${clock(m.end)}`,
        el("span", { "class": "meta" }, ` · score ${m.score.toFixed(3)}`)));
    item.addEventListener("click", () => seek(m.start, m.stream));
    return item;
  }));
});
$("search-close").addEventListener("click", () => { $("search-results").hidden = true; });
