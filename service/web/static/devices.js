// The devices page: every device with its LUTs and the agents online for them (GET /devices).
"use strict";
(function () {
  const { api, el, onKey } = window.hwnas;

  async function load() {
    const { devices } = await api("/devices");
    document.getElementById("devices-empty").hidden = devices.length > 0;
    document.querySelector("#devices-table tbody").replaceChildren(...devices.map((d) => el("tr", {},
      el("td", {}, el("a", { href: `/ui/devices/${encodeURIComponent(d.name)}`, text: d.name })),
      el("td", { text: d.access }),
      el("td", { text: d.luts.map((l) => `${l.backend}: ${l.entries}`).join("; ") }),
      el("td", { text: String(d.luts.reduce((n, l) => n + l.agents_online, 0)) }))));
  }

  onKey(load);
})();
