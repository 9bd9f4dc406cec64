// A device's page: its LUTs with coverage per space, its agents, the heatmap of op latency per
// layer and candidate (GET /devices/{name}/heatmap) and its calibration runs, predicted against
// measured (GET /devices/{name}/calibration).
"use strict";
(function () {
  const { api, el, fmt, onKey, report } = window.hwnas;
  const name = document.getElementById("device").dataset.device;
  const path = `/devices/${encodeURIComponent(name)}`;
  const PLOT = { displaylogo: false, responsive: true };

  function lutSection(lut) {
    const coverage = (lut.coverage || []).map((c) => el("tr", {},
      el("td", {}, el("code", { text: c.space })), el("td", { text: `${c.total - c.missing} / ${c.total}` }),
      el("td", { text: c.complete ? "complete" : `${c.missing} missing` })));
    const print = Object.entries(lut.fingerprint).map(([k, v]) => `${k}=${v}`).join(", ");
    return el("div", { class: "lut" },
      el("h3", { text: `${lut.backend} LUT: ${lut.entries} entries, ${lut.agents_online} agent(s) online` }),
      el("p", { class: "muted", text: print }),
      el("table", {}, el("caption", { text: "Coverage of each registered space at its default parameters" }),
        el("thead", {}, el("tr", {}, ...["Space", "Measured", "Status"].map((t) => el("th", { scope: "col", text: t })))),
        el("tbody", {}, ...coverage)));
  }

  async function load() {
    const device = await api(path);
    document.getElementById("luts").replaceChildren(...device.luts.map(lutSection));
    const agents = device.agents || [];
    document.getElementById("agents-empty").hidden = agents.length > 0;
    document.querySelector("#agents-table tbody").replaceChildren(...agents.map((a) => el("tr", {},
      el("td", { text: a.name }), el("td", { text: a.online ? "online" : "offline" }),
      el("td", { text: a.backend }), el("td", { text: new Date(a.last_seen_at).toLocaleString() }))));
    const input = document.getElementById("heatmap-space");
    if (!input.value) {
      const wanted = new URLSearchParams(location.search).get("space");
      const complete = device.luts.flatMap((l) => l.coverage || []).find((c) => c.complete);
      input.value = wanted || (complete ? complete.space : "");
    }
    if (input.value) await drawSpace(input.value);
  }

  async function drawSpace(space) {
    const query = `?space=${encodeURIComponent(space)}`;
    const heat = await api(`${path}/heatmap${query}`);
    const width = Math.max(...heat.candidates.map((c) => c.length));
    const same = heat.candidates.every((c) => c.join() === heat.candidates[0].join());
    const x = same ? heat.candidates[0] : Array.from({ length: width }, (_, k) => `candidate ${k + 1}`);
    const target = document.getElementById("heatmap");
    Plotly.react(target, [{
      type: "heatmap", z: heat.median_ms, x, y: heat.layers, colorscale: "Viridis", hoverongaps: false,
      text: heat.candidates, hovertemplate: "%{y} %{text}: %{z:.4f} ms<extra></extra>",
      colorbar: { title: { text: "ms" } },
    }], { xaxis: { title: { text: "candidate" } }, yaxis: { title: { text: "layer" }, autorange: "reversed" },
      height: 140 + 34 * heat.layers.length, margin: { l: 80, t: 20 } }, PLOT);
    target.dataset.layers = String(heat.layers.length);
    document.getElementById("heatmap-note").textContent =
      `${heat.space} on ${heat.backend}: ${heat.missing} candidate op(s) missing from the LUT (blank cells).`;
    await drawCalibration(query);
  }

  async function drawCalibration(query) {
    const cal = await api(`${path}/calibration${query}`);
    const target = document.getElementById("calibration");
    const note = document.getElementById("calibration-note");
    if (!cal.runs.length) {
      Plotly.purge(target);
      note.textContent = `No end-to-end runs of ${cal.space} on this device yet (hwnas lut calibrate).`;
      return;
    }
    const measured = cal.runs.map((r) => r.measured_ms);
    const traces = [{ type: "scatter", mode: "markers", name: "LUT sum", x: measured, y: cal.runs.map((r) => r.predicted_ms),
      text: cal.runs.map((r) => r.arch) }];
    if (cal.calibration) {
      traces.push({ type: "scatter", mode: "markers", name: "calibrated", x: measured,
        y: cal.runs.map((r) => r.calibrated_ms), marker: { symbol: "diamond" }, text: cal.runs.map((r) => r.arch) });
    }
    const top = Math.max(...measured, ...cal.runs.map((r) => r.predicted_ms)) * 1.05;
    traces.push({ type: "scatter", mode: "lines", name: "predicted = measured", x: [0, top], y: [0, top],
      line: { dash: "dot", width: 1 } });
    Plotly.react(target, traces, { xaxis: { title: { text: "measured (ms)" } },
      yaxis: { title: { text: "predicted (ms)" } }, height: 380, margin: { t: 20 } }, PLOT);
    const c = cal.calibration;
    note.textContent = c
      ? `Calibration ${c.form || ""}: MAPE ${fmt(c.mape_before, 1)} % before, ${fmt(c.mape_after, 1)} % after, ` +
        `${fmt(c.mape_loo, 1)} % leave-one-out, over ${c.n_points} runs.`
      : `${cal.runs.length} run(s); no calibration fitted yet.`;
  }

  document.getElementById("space-form").addEventListener("submit", (event) => {
    event.preventDefault();
    drawSpace(document.getElementById("heatmap-space").value.trim()).catch(report);
  });
  onKey(load);
})();
