// The jobs page: the list (states followed live over each running job's event stream), the
// dataset upload with its progress bar, the submit form, and cancel.
"use strict";
(function () {
  const { api, postJson, events, upload, el, fmt, onKey, report, showMessage } = window.hwnas;
  const TERMINAL = new Set(["done", "failed", "cancelled"]);
  const MAX_STREAMS = 3; // a browser opens few connections per server; the rest are polled
  const streams = new Map();

  function budgetsText(request) {
    return (request.devices || []).map((d) => {
      const b = (request.budgets || {})[d];
      return b === undefined ? d : `${d}: ${Array.isArray(b) ? b.join(", ") : b}`;
    }).join("; ");
  }

  function stateCell(state) {
    return el("td", { class: `state-${state}`, "data-state": state, text: state });
  }

  function row(job) {
    const cancel = TERMINAL.has(job.state) ? "" : el("button", {
      type: "button", text: "Cancel", "aria-label": `Cancel job ${job.id.slice(0, 8)}`,
      onclick: () => cancelJob(job.id),
    });
    return el("tr", { id: `job-${job.id}` },
      el("td", {}, el("a", { href: `/ui/jobs/${job.id}` }, el("code", { text: job.id.slice(0, 8) }))),
      stateCell(job.state),
      el("td", { text: job.request.space }),
      el("td", { text: budgetsText(job.request) }),
      el("td", { text: job.request.strategy }),
      el("td", { text: new Date(job.created_at).toLocaleString() }),
      el("td", {}, cancel));
  }

  async function loadJobs() {
    const { jobs } = await api("/jobs?limit=100");
    const body = document.querySelector("#jobs-table tbody");
    body.replaceChildren(...jobs.map(row));
    document.getElementById("jobs-empty").hidden = jobs.length > 0;
    for (const job of jobs) {
      if (!TERMINAL.has(job.state) && !streams.has(job.id) && streams.size < MAX_STREAMS) follow(job.id);
    }
  }

  function setState(id, state) {
    const cell = document.querySelector(`#job-${id} td[data-state]`);
    if (cell) cell.replaceWith(stateCell(state));
    if (TERMINAL.has(state)) {
      const button = document.querySelector(`#job-${id} button`);
      if (button) button.remove();
    }
  }

  function follow(id) {
    const controller = new AbortController();
    streams.set(id, controller);
    events(`/jobs/${id}/events`, (type, data) => {
      if (type === "state") setState(id, data.state);
    }, controller.signal).catch(() => { /* the list's refresh shows the state */ })
      .finally(() => { streams.delete(id); });
  }

  async function cancelJob(id) {
    try {
      const job = await postJson(`/jobs/${id}/cancel`, {});
      setState(id, job.state);
      showMessage(`Cancelling job ${id.slice(0, 8)}: it stops between steps.`);
    } catch (error) { report(error); }
  }

  async function loadDevices() {
    const { devices } = await api("/devices");
    const box = document.getElementById("device-choices");
    if (!devices.length) { box.replaceChildren(el("p", { class: "muted", text: "No device has a LUT yet." })); return; }
    box.replaceChildren(...devices.map((d, i) => el("div", { class: "device-choice" },
      el("label", { class: "inline" },
        el("input", { type: "checkbox", name: "devices", value: d.name, checked: i === 0 }), ` ${d.name}`),
      el("label", { class: "inline", for: `budget-${i}`, text: `Budget for ${d.name} (ms)` }),
      el("input", { id: `budget-${i}`, name: `budget-${d.name}`, "data-device": d.name, inputmode: "decimal",
        placeholder: "e.g. 3 or 2, 3, 4", size: 14 }))));
  }

  function numberOf(form, name) {
    const text = form.elements[name].value.trim();
    return text === "" ? undefined : Number(text);
  }

  function jobBody(form) {
    const devices = [...form.querySelectorAll("input[name=devices]:checked")].map((c) => c.value);
    const budgets = {};
    for (const input of form.querySelectorAll("input[data-device]")) {
      const text = input.value.trim();
      if (!text || !devices.includes(input.dataset.device)) continue;
      const values = text.split(",").map((t) => Number(t.trim()));
      budgets[input.dataset.device] = values.length === 1 ? values[0] : values;
    }
    const body = {
      dataset: form.elements.dataset.value.trim(),
      space: form.elements.space.value.trim(),
      strategy: form.elements.strategy.value,
      devices,
      budgets,
      export_formats: [...form.querySelectorAll("input[name=export_formats]:checked")].map((c) => c.value),
    };
    for (const name of ["epochs", "child_epochs", "batch_size"]) {
      const value = numberOf(form, name);
      if (value !== undefined) body[name] = value;
    }
    return body;
  }

  async function submitJob(event) {
    event.preventDefault();
    const out = document.getElementById("submit-result");
    out.textContent = "Submitting…";
    try {
      const created = await postJson("/jobs", jobBody(event.target));
      out.replaceChildren("Submitted: ", el("a", { href: `/ui/jobs/${created.id}`, id: "new-job-link" },
        `job ${created.id.slice(0, 8)}`), ` (${created.state}).`);
      showMessage("");
      await loadJobs();
    } catch (error) {
      out.textContent = `Not submitted: ${error.message}`;
      report(error);
    }
  }

  async function uploadDataset(event) {
    event.preventDefault();
    const file = document.getElementById("dataset-file").files[0];
    const out = document.getElementById("upload-result");
    const bar = document.getElementById("upload-progress");
    if (!file) { out.textContent = "Choose a .zip or .npz file first."; return; }
    bar.value = 0;
    out.textContent = `Uploading ${file.name}…`;
    try {
      const dataset = await upload("/datasets", file, (share) => { bar.value = Math.round(100 * share); });
      document.getElementById("job-dataset").value = dataset.id;
      out.textContent = `Uploaded ${dataset.name}: ${dataset.id} (${dataset.num_classes ?? "?"} classes). ` +
        "Its id is filled in below.";
    } catch (error) {
      out.textContent = `Upload failed: ${error.message}`;
    }
  }

  document.getElementById("job-form").addEventListener("submit", submitJob);
  document.getElementById("upload-form").addEventListener("submit", uploadDataset);
  onKey(loadJobs);
  onKey(loadDevices);
  setInterval(() => { if (sessionStorage.getItem("hwnas.apiKey")) loadJobs().catch(() => {}); }, 10000);
})();
