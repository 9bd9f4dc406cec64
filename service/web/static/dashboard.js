// Shared by every page: the API key (session storage, sent as the Bearer header, never in a URL),
// fetch with a clear message for a missing or refused key, server-sent events over fetch (so the
// key travels as a header), and small DOM helpers that never parse text as HTML.
"use strict";
(function () {
  const STORAGE = "hwnas.apiKey";
  const readyHandlers = [];

  function key() { return sessionStorage.getItem(STORAGE) || ""; }

  function showMessage(text, kind) {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = kind || "";
    box.hidden = !text;
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  function detailOf(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    }
    return `HTTP ${status}`;
  }

  async function refused(response) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    const detail = detailOf(body, response.status);
    if (response.status === 401) {
      showMessage(`The API key was not accepted (${detail}). Paste a valid key above.`, "error");
    } else if (response.status === 403) {
      showMessage(`This API key may not do that (${detail}). Use a user key.`, "error");
    }
    return new ApiError(response.status, detail);
  }

  function headers(extra) {
    if (!key()) {
      showMessage("No API key yet: paste one above (hwnas keys create --scope user).", "error");
      throw new ApiError(401, "no API key");
    }
    return Object.assign({ Authorization: `Bearer ${key()}` }, extra || {});
  }

  async function request(path, options) {
    const init = Object.assign({}, options || {});
    init.headers = headers(init.headers);
    const response = await fetch(path, init);
    if (!response.ok) throw await refused(response);
    return response;
  }

  async function api(path, options) {
    const response = await request(path, options);
    return response.status === 204 ? null : response.json();
  }

  async function postJson(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // Reads a text/event-stream with fetch; calls onEvent(type, data, id) per event.
  async function events(path, onEvent, signal) {
    const response = await request(path, { signal, headers: { Accept: "text/event-stream" } });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let type = "message", data = "", id = null;
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) type = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
          else if (line.startsWith("id: ")) id = Number(line.slice(4));
        }
        if (data) onEvent(type, JSON.parse(data), id);
      }
    }
  }

  // Uploads a file as multipart field `file`, reporting progress (0..1); resolves to the JSON.
  function upload(path, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("Authorization", headers().Authorization);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(body); return; }
        const detail = detailOf(body, xhr.status);
        if (xhr.status === 401) {
          showMessage(`The API key was not accepted (${detail}). Paste a valid key above.`, "error");
        }
        reject(new ApiError(xhr.status, detail));
      };
      xhr.onerror = () => reject(new ApiError(0, "the upload did not reach the server"));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  // Downloads an authenticated file: fetched with the key, handed to the browser as a blob.
  async function download(path, filename) {
    const response = await request(path);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits ?? 3);
    return String(value);
  }

  // Runs `handler` now if a key is kept, and again whenever a new key is given.
  function onKey(handler) {
    readyHandlers.push(handler);
    if (key()) Promise.resolve().then(() => run(handler));
  }

  async function run(handler) {
    try { await handler(); } catch (error) { report(error); }
  }

  function report(error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return;
    showMessage(error instanceof ApiError ? error.message : `Something failed: ${error}`, "error");
  }

  async function useKey(event) {
    event.preventDefault();
    const input = document.getElementById("api-key");
    const text = input.value.trim();
    if (!text) { showMessage("Paste an API key first.", "error"); input.focus(); return; }
    sessionStorage.setItem(STORAGE, text);
    input.value = "";
    try {
      await api("/devices"); // any user or admin key may read it
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) sessionStorage.removeItem(STORAGE);
      else report(error);
      updateKeyState();
      return;
    }
    showMessage("");
    updateKeyState();
    for (const handler of readyHandlers) run(handler);
  }

  function updateKeyState() {
    document.getElementById("key-state").textContent = key()
      ? `using key ${key().slice(0, 18)}… (this tab only)`
      : "no key: paste one to see your jobs";
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("key-form").addEventListener("submit", useKey);
    document.getElementById("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(STORAGE);
      updateKeyState();
      showMessage("The key is forgotten; paste one to go on.");
    });
    updateKeyState();
    if (!key()) showMessage("Paste an API key above to begin (hwnas keys create --scope user).");
  });

  window.hwnas = { api, postJson, events, upload, download, el, fmt, onKey, report, showMessage, ApiError };
})();
