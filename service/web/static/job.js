// A job's page: live progress per budget from the event stream, the architecture probabilities
// over the steps, the Pareto plot, the chosen network layer by layer, the model card's input
// contract and the downloads — each drawn from the JSON routes as they answer.
"use strict";
(function () {
  const { api, postJson, events, download, el, fmt, onKey, report, showMessage } = window.hwnas;
  const TERMINAL = new Set(["done", "failed", "cancelled"]);
  const root = document.getElementById("job");
  const jobId = root.dataset.jobId;
  const PLOT = { displaylogo: false, responsive: true };
  let stream = null;
  let lastEvent = 0;
  let history = null;
  let layerResults = [];

  function setState(state) {
    const node = document.getElementById("job-state");
    node.textContent = state;
    node.className = `state-${state}`;
    root.dataset.state = state;
    document.getElementById("cancel-job").hidden = TERMINAL.has(state);
  }

  function showRequest(job) {
    const r = job.request;
    const pairs = [["Space", r.space], ["Dataset", job.dataset_id || r.dataset], ["Strategy", r.strategy],
      ["Devices", (r.devices || []).join(", ")], ["Budgets (ms)", JSON.stringify(r.budgets || {})],
      ["Epochs", r.epochs], ["Export formats", (r.export_formats || []).join(", ") || "none"],
      ["Submitted", new Date(job.created_at).toLocaleString()]];
    document.getElementById("job-request").replaceChildren(
      ...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmt(v) })]));
    const error = document.getElementById("job-error");
    error.hidden = !job.error;
    error.textContent = job.error ? `Error: ${job.error}` : "";
  }

  // -- live progress -----------------------------------------------------------------------
  function progressRow(key) {
    const id = `progress-${String(key).replace(/[^a-z0-9]/gi, "_")}`;
    let row = document.getElementById(id);
    if (!row) {
      row = el("tr", { id }, ...Array.from({ length: 9 }, () => el("td")));
      document.querySelector("#progress-table tbody").append(row);
    }
    return row;
  }

  const curves = new Map(); // progress key → {steps, latency}: the expected latency over the steps
  let curvesPending = null;

  function addToCurve(key, data) {
    const value = Object.values(data.expected_latency_ms || {})[0] ?? data.path_latency_ms;
    if (value === undefined || value === null) return;
    if (!curves.has(key)) curves.set(key, { steps: [], latency: [] });
    const curve = curves.get(key);
    curve.steps.push(data.step);
    curve.latency.push(value);
  }

  function drawCurves() { // at most twice a second, however fast the events come
    if (!curvesPending) curvesPending = setTimeout(drawCurvesNow, 500);
  }

  function drawCurvesNow() {
    curvesPending = null;
    // copies: Plotly.react redraws a trace only when its arrays are new ones
    const traces = [...curves.entries()].map(([key, c]) => ({
      x: [...c.steps], y: [...c.latency], mode: "lines+markers", name: key === "shared weights"
        ? "sampled path (shared weights)" : `budget ${fmt(key)} ms`,
    }));
    Plotly.react(document.getElementById("progress-plot"), traces, {
      xaxis: { title: { text: "step" } }, yaxis: { title: { text: "expected latency, primary device (ms)" } },
      height: 300, margin: { t: 20 },
    }, PLOT);
  }

  function onSearch(data) {
    const budget = data.budget_ms ?? budgetOfPrimary();
    const key = data.phase === "weights" ? "shared weights" : budget ?? "—";
    addToCurve(key, data);
    drawCurves();
    const row = progressRow(key);
    const expected = Object.entries(data.expected_latency_ms || {}).map(([d, v]) => `${d}: ${fmt(v)}`).join(", ");
    const bar = el("progress", { max: data.steps, value: data.step, "aria-label": `step ${data.step} of ${data.steps}` });
    const cells = [data.phase === "weights" ? "all (shared)" : fmt(budget), data.phase || "search",
      data.epoch ? `${data.epoch}/${data.epochs}` : "—",
      data.arch_step ? `${data.arch_step}/${data.arch_steps}` : `${data.step}/${data.steps}`,
      bar, fmt(data.loss ?? data.arch_loss), fmt(data.accuracy), expected || fmt(data.path_latency_ms),
      fmt(data.temperature)];
    row.querySelectorAll("td").forEach((td, i) => td.replaceChildren(cells[i]));
  }

  function budgetOfPrimary() {
    const r = root.request;
    if (!r) return null;
    const b = (r.budgets || {})[r.devices[0]];
    return Array.isArray(b) ? null : b ?? null;
  }

  function logEvent(type, data, id) {
    const log = document.getElementById("event-log");
    const text = JSON.stringify(data);
    log.append(el("li", { text: `${type}: ${text.length > 240 ? `${text.slice(0, 240)}…` : text}` }));
    while (log.children.length > 200) log.firstChild.remove();
    if (id) lastEvent = id;
  }

  function onEvent(type, data, id) {
    logEvent(type, data, id);
    if (type === "state") {
      setState(data.state);
      if (data.state === "training" || TERMINAL.has(data.state)) refresh().catch(report);
    } else if (type === "search") {
      onSearch(data);
    }
  }

  function followEvents() {
    if (stream) stream.abort();
    stream = new AbortController();
    const mine = stream;
    events(`/jobs/${jobId}/events?after=${lastEvent}`, onEvent, stream.signal)
      .then(() => { // a stream cut before the job's end (a restarted server) is picked up again
        if (stream === mine && !TERMINAL.has(root.dataset.state)) setTimeout(followEvents, 3000);
      })
      .catch((error) => { if (error.name !== "AbortError") report(error); });
  }

  // -- results -------------------------------------------------------------------------------
  async function refresh() {
    const job = await api(`/jobs/${jobId}`);
    root.request = job.request;
    setState(job.state);
    showRequest(job);
    await drawHistory();
    if (job.state !== "done") return;
    drawPareto(job);
    await drawLayers();
    await drawModels();
  }

  async function drawHistory() {
    history = await api(`/jobs/${jobId}/history`);
    const runSelect = document.getElementById("probability-run");
    const previous = runSelect.value;
    runSelect.replaceChildren(...history.runs.map((run, i) =>
      el("option", { value: i, text: run.budget_ms === null ? "the job's budget" : `${fmt(run.budget_ms)} ms` })));
    if (previous && previous < history.runs.length) runSelect.value = previous;
    fillLayers();
  }

  function fillLayers() {
    const run = history && history.runs[Number(document.getElementById("probability-run").value || 0)];
    const layerSelect = document.getElementById("probability-layer");
    const previous = layerSelect.value;
    layerSelect.replaceChildren(...(run ? run.layers : []).map((label, i) => el("option", { value: i, text: label })));
    if (previous && run && previous < run.layers.length) layerSelect.value = previous;
    drawProbabilities();
  }

  function drawProbabilities() {
    const target = document.getElementById("probabilities");
    const run = history && history.runs[Number(document.getElementById("probability-run").value || 0)];
    const note = document.getElementById("probabilities-note");
    note.textContent = run && run.steps.length ? "" : "No architecture steps yet.";
    if (!run || !run.steps.length) { Plotly.purge(target); return; }
    const layer = Number(document.getElementById("probability-layer").value || 0);
    const traces = run.candidates[layer].map((name, k) => ({
      x: run.steps, y: run.probabilities.map((step) => step[layer][k]), name, mode: "lines", stackgroup: "p",
    }));
    Plotly.react(target, traces, {
      title: { text: `Layer ${run.layers[layer]}: probability of each candidate` },
      xaxis: { title: { text: "architecture step" } }, yaxis: { title: { text: "probability" }, range: [0, 1] },
      height: 360, margin: { t: 40 },
    }, PLOT);
  }

  function resultsOf(metrics) {
    return metrics.budgets ? metrics.budgets : [metrics];
  }

  function drawPareto(job) {
    const results = resultsOf(job.metrics || {}).filter((r) => r.arch);
    const measuredOf = (device) => {
      const m = ((job.metrics.target || {}).target_measurements || {})[device];
      return m && m.status === "measured" ? m.median_ms : null;
    };
    const rows = results.map((r) => {
      const [device, predicted] = Object.entries(r.predicted_latency_ms)[0];
      const budget = r.budget_ms ?? (r.budgets_ms || {})[device] ?? null;
      return { device, predicted, budget, measured: results.length === 1 ? measuredOf(device) : null,
        accuracy: r.test_accuracy, arch: r.arch, budgets: r.budgets_ms || {} };
    });
    const traces = [{
      x: rows.map((r) => r.predicted), y: rows.map((r) => 100 * r.accuracy), mode: "markers",
      type: "scatter", name: "predicted latency", marker: { size: 11 },
      text: rows.map((r) => `budget ${fmt(r.budget)} ms`),
    }];
    const measured = rows.filter((r) => r.measured !== null);
    if (measured.length) {
      traces.push({ x: measured.map((r) => r.measured), y: measured.map((r) => 100 * r.accuracy),
        mode: "markers", type: "scatter", name: "measured on the target", marker: { size: 11, symbol: "diamond" } });
    }
    const budgetLines = [];
    for (const r of rows) {
      for (const [device, value] of Object.entries(r.budgets)) {
        if (value !== null && !budgetLines.some((b) => b.device === device && b.value === value)) budgetLines.push({ device, value });
      }
    }
    const shapes = budgetLines.map((b) => ({ type: "line", x0: b.value, x1: b.value, yref: "paper", y0: 0, y1: 1,
      line: { dash: "dash", width: 1 } }));
    const annotations = budgetLines.map((b) => ({ x: b.value, yref: "paper", y: 1, text: `${b.device} budget ${fmt(b.value)} ms`,
      showarrow: false, textangle: -90, xanchor: "right", yanchor: "top", font: { size: 11 } }));
    const target = document.getElementById("pareto");
    Plotly.react(target, traces, {
      xaxis: { title: { text: "latency (ms)" }, rangemode: "tozero" },
      yaxis: { title: { text: "test accuracy (%)" } },
      shapes, annotations, height: 380, margin: { t: 20 },
    }, PLOT);
    target.dataset.points = String(rows.length);
    document.querySelector("#pareto-table tbody").replaceChildren(...rows.map((r) => el("tr", {},
      el("td", { text: fmt(r.budget) }), el("td", { text: r.device }), el("td", { text: fmt(r.predicted) }),
      el("td", { text: fmt(r.measured) }), el("td", { text: `${fmt(100 * r.accuracy, 1)} %` }),
      el("td", {}, el("code", { text: r.arch })))));
  }

  async function drawLayers() {
    const { results } = await api(`/jobs/${jobId}/layers`);
    layerResults = results;
    const select = document.getElementById("layers-result");
    select.replaceChildren(...results.map((r, i) => el("option", { value: i,
      text: r.budget_ms === null ? "the result" : `budget ${fmt(r.budget_ms)} ms` })));
    drawLayerResult();
  }

  function drawLayerResult() {
    const result = layerResults[Number(document.getElementById("layers-result").value || 0)];
    if (!result) return;
    const devices = result.devices;
    const errors = Object.entries(result.errors).map(([d, e]) => `${d}: ${e}`).join("; ");
    if (errors) showMessage(`No breakdown for ${errors}`);
    const labels = devices.length ? devices[0].layers.map((l) => `${l.layer} ${l.choice}`) : [];
    Plotly.react(document.getElementById("layers-plot"), devices.map((d) => ({
      type: "bar", orientation: "h", name: d.device, y: labels, x: d.layers.map((l) => l.predicted_ms),
    })), { xaxis: { title: { text: "predicted latency (ms)" } }, yaxis: { autorange: "reversed" },
      height: 120 + 28 * labels.length, margin: { l: 160, t: 20 } }, PLOT);
    const table = document.getElementById("layers-table");
    table.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Layer" }), el("th", { scope: "col", text: "Choice" }),
      ...devices.map((d) => el("th", { scope: "col", text: `${d.device} (ms${d.calibrated ? ", calibrated" : ""})` }))));
    const rows = labels.map((_, i) => el("tr", {}, el("td", { text: devices[0].layers[i].layer }),
      el("td", {}, el("code", { text: devices[0].layers[i].choice })),
      ...devices.map((d) => el("td", { text: fmt(d.layers[i].predicted_ms, 4) }))));
    rows.push(el("tr", {}, el("td", { text: "fixed (stem, head, per call)" }), el("td"),
      ...devices.map((d) => el("td", { text: fmt(d.constant_ms, 4) }))));
    rows.push(el("tr", {}, el("th", { scope: "row", text: "total" }), el("td"),
      ...devices.map((d) => el("td", { text: fmt(d.total_ms, 4) }))));
    table.tBodies[0].replaceChildren(...rows);
  }

  async function drawModels() {
    const models = await api(`/models/${jobId}`);
    const list = document.getElementById("downloads");
    if (!models.files.length) list.replaceChildren(el("li", { class: "muted", text: "This job offers no files." }));
    else list.replaceChildren(...models.files.map((f) => el("li", {},
      el("button", { type: "button", "data-file": f.name, text: `Download ${f.name}`,
        onclick: () => download(f.url, `hwnas-${jobId.slice(0, 8)}-${f.name}`).catch(report) }),
      ` ${fmt(f.size_bytes / 1024, 1)} KiB`)));
    const box = document.getElementById("card-input");
    const input = models.input;
    if (!input) { box.replaceChildren(el("p", { class: "muted", text: "No exported files, so no card." })); return; }
    const pairs = [["Image", `${input.channels} × ${input.height} × ${input.width} (${input.channel_order})`],
      ["Resize", input.resize ? `${input.resize.method}, to ${input.resize.to.join("×")}` : "—"],
      ["Pixels", input.pixels], ["Normalisation", input.normalisation ? input.normalisation.where : "—"],
      ["Classes", (input.class_names || []).join(", ")]];
    const files = Object.entries(input.files || {}).map(([name, f]) => el("tr", {}, el("td", { text: name }),
      el("td", { text: `${f.name}: ${(f.shape || []).join("×")} ${f.dtype} ${f.layout}` }),
      el("td", { text: (f.value_range || []).join(" … ") }),
      el("td", { text: f.output ? `${f.output.name}: ${(f.output.shape || []).join("×")} ${f.output.dtype}` : "—" })));
    box.replaceChildren(el("dl", { class: "pairs" }, ...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmt(v) })])),
      el("table", { id: "card-files" }, el("thead", {}, el("tr", {}, ...["File", "Input", "Value range", "Output"].map((t) => el("th", { scope: "col", text: t })))),
        el("tbody", {}, ...files)));
  }

  async function cancel() {
    try {
      const job = await postJson(`/jobs/${jobId}/cancel`, {});
      setState(job.state);
      showMessage("Cancel requested: the job stops between steps.");
    } catch (error) { report(error); }
  }

  document.getElementById("cancel-job").addEventListener("click", cancel);
  document.getElementById("probability-run").addEventListener("change", fillLayers);
  document.getElementById("probability-layer").addEventListener("change", drawProbabilities);
  document.getElementById("layers-result").addEventListener("change", drawLayerResult);
  onKey(async () => { await refresh(); followEvents(); });
  // the probabilities grow while the search runs: redrawn from the history every few seconds
  setInterval(() => {
    if (root.dataset.state === "searching") drawHistory().catch(() => {});
  }, 5000);
})();
