// The page `vnet ui` serves: the networks drawn as the seeds' diagrams draw
// them (a network is a switch, hub or NAT router; its ports are plugs with
// their kind; guests hang off the port they were learned on, with lease and
// name), live counters and throughput sparklines, and the controls a user
// needs at the bench: link up/down per port, port forwards added and
// removed. Plain SVG and DOM, no library: it works offline and from the
// binary alone.
#include "cli/ui.hpp"

namespace vnet::cli {

const char* const kUiPage = R"PAGE(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vnet</title>
<style>
body{font:14px system-ui,sans-serif;margin:16px;background:#f6f7f9;color:#222}
h1{font-size:18px;margin:0 0 12px}
.net{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px;margin-bottom:16px}
.net h2{font-size:16px;margin:0 0 8px}
.muted{color:#777}
svg text{font:12px system-ui,sans-serif}
table{border-collapse:collapse;margin-top:8px}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;font-size:13px}
button{font-size:12px;cursor:pointer}
#err{color:#b00;margin-bottom:8px}
</style></head>
<body><h1>vnet <span class="muted" id="engine"></span></h1><div id="err"></div><div id="nets"></div>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const history = {};  // "net/port" -> [{t, bytes}] for the sparklines
const SPARK = 60;
const ruleInputs = {};  // network -> its "add forward" input

async function api(path, body) {
  const opts = {headers: {"X-Vnet-Token": token}};
  if (body) { opts.method = "POST"; opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  const j = await r.json();
  if (!j.ok) throw new Error(j.error || r.statusText);
  return j;
}

function el(tag, attrs, ...kids) {
  const svg = ["svg","g","rect","circle","line","text","polyline","title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function human(n, unit) {
  const u = ["", "k", "M", "G", "T"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i] + unit;
}

function rate(key, bytes) {
  const now = Date.now() / 1000, h = (history[key] = history[key] || []);
  h.push({t: now, bytes});
  while (h.length > SPARK + 1) h.shift();
  const rates = [];
  for (let i = 1; i < h.length; i++) rates.push(8 * Math.max(0, h[i].bytes - h[i-1].bytes) / Math.max(0.001, h[i].t - h[i-1].t));
  return rates;
}

function sparkline(rates, x, y, w, h) {
  const max = Math.max(1, ...rates);
  const pts = rates.map((r, i) => `${x + i * w / SPARK},${y + h - h * r / max}`).join(" ");
  return el("g", {}, el("rect", {x, y, width: w, height: h, fill: "#f3f6fb", stroke: "#dde"}),
            el("polyline", {points: pts, fill: "none", stroke: "#2a6", "stroke-width": 1.5}));
}

function guestsOf(net, port) {
  const leases = (net.nat && net.nat.leases) || [];
  return (net.macs || []).filter(m => m.port === port.id).map(m => {
    const l = leases.find(x => x.mac === m.mac);
    return m.mac + (l ? "  " + l.ip + (l.hostname ? " (" + l.hostname + ")" : "") : "");
  });
}

function drawNetwork(net) {
  const ports = net.ports || [], rowH = 64, h = Math.max(120, ports.length * rowH + 20), w = 1060;
  const svg = el("svg", {width: w, height: h, viewBox: `0 0 ${w} ${h}`});
  const hub = {x: 30, y: h / 2 - 35, w: 150, h: 70};
  const shape = net.mode === "nat" ? "NAT router" : net.mode === "hub" ? "hub" : "switch";
  svg.append(el("rect", {x: hub.x, y: hub.y, width: hub.w, height: hub.h, rx: 10, fill: "#e8eefc", stroke: "#4a6fd8"}),
             el("text", {x: hub.x + 12, y: hub.y + 28}, net.name),
             el("text", {x: hub.x + 12, y: hub.y + 48, fill: "#555"}, `${shape}, mtu ${net.mtu}`));
  ports.forEach((p, i) => {
    const y = 10 + i * rowH + rowH / 2, px = 260;
    const up = p.link === "up", c = p.counters || {};
    svg.append(el("line", {x1: hub.x + hub.w, y1: hub.y + hub.h / 2, x2: px - 10, y2: y, stroke: up ? "#4a6fd8" : "#bbb",
                           "stroke-dasharray": up ? "" : "4 4"}));
    svg.append(el("circle", {cx: px, cy: y, r: 9, fill: up ? "#2a6" : "#bbb"}, el("title", {}, p.spec || p.kind)));
    svg.append(el("text", {x: px + 16, y: y - 8}, `port ${p.id}: ${p.kind}`),
               el("text", {x: px + 16, y: y + 8, fill: "#666"}, (p.peer || "").slice(0, 48)),
               el("text", {x: px + 16, y: y + 24, fill: "#888"},
                  `rx ${human(c.rx_frames || 0, "")} fr / ${human(c.rx_bytes || 0, "B")}, tx ${human(c.tx_frames || 0, "")} fr / ${human(c.tx_bytes || 0, "B")}`));
    const rates = rate(net.name + "/" + p.id, (c.rx_bytes || 0) + (c.tx_bytes || 0));
    svg.append(sparkline(rates, 620, y - 18, 120, 30),
               el("text", {x: 620, y: y + 26, fill: "#666"}, human(rates.length ? rates[rates.length - 1] : 0, "bit/s")));
    guestsOf(net, p).slice(0, 2).forEach((g, k) =>
      svg.append(el("text", {x: 770, y: y - 4 + 14 * k, fill: "#333"}, g)));
  });
  return svg;
}

function portTable(net) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "port"), el("th", {}, "kind"), el("th", {}, "state"),
                               el("th", {}, "link"), el("th", {}, "")));
  for (const p of net.ports || []) {
    const next = p.link === "up" ? "down" : "up";
    t.append(el("tr", {}, el("td", {}, p.id), el("td", {}, p.kind), el("td", {}, p.state), el("td", {}, p.link),
                el("td", {}, el("button", {onclick: () => act("/api/port", {net: net.name, port: p.id, link: next})},
                                `link ${next}`))));
  }
  return t;
}

function forwards(net) {
  const box = el("div", {});
  const t = el("table", {}, el("tr", {}, el("th", {}, "forward"), el("th", {}, "host"), el("th", {}, "guest"),
                               el("th", {}, "connections"), el("th", {}, "")));
  for (const f of net.nat.forwards || [])
    t.append(el("tr", {}, el("td", {}, f.name), el("td", {}, f.proto + " " + f.host), el("td", {}, f.guest),
                el("td", {}, f.connections),
                el("td", {}, el("button", {onclick: () => act("/api/pf/del", {net: net.name, name: f.name})}, "remove"))));
  // The same input element across redraws, so what the user types survives the refresh.
  const input = (ruleInputs[net.name] = ruleInputs[net.name] ||
                 el("input", {size: 32, placeholder: "tcp:127.0.0.1:2222-:22", class: "rule"}));
  box.append(t, el("div", {}, input, " ", el("button", {onclick: async () => {
    if (await act("/api/pf/add", {net: net.name, rule: input.value})) input.value = "";
  }}, "add forward")));
  return box;
}

async function act(path, body) {
  try {
    await api(path, body);
    await refresh();
    return true;
  } catch (e) {
    document.getElementById("err").textContent = e.message;
    return false;
  }
}

async function refresh() {
  try {
    const s = await api("/api/status");
    document.getElementById("err").textContent = "";
    document.getElementById("engine").textContent = s.status.engine ? `pid ${s.status.engine.pid || ""}` : "";
    const nets = document.getElementById("nets");
    nets.replaceChildren(...s.status.networks.map(n => {
      const card = el("div", {class: "net", "data-net": n.name}, el("h2", {}, `${n.name} `, el("span", {class: "muted"}, n.mode)));
      card.append(drawNetwork(n), portTable(n));
      if (n.nat) card.append(forwards(n));
      return card;
    }));
  } catch (e) {
    document.getElementById("err").textContent = "engine: " + e.message;
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
)PAGE";

}  // namespace vnet::cli
