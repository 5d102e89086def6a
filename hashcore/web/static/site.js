// The hashcore site page. The site's figures arrive as server-sent events from /api/events
// once a second (polling /api/site while the stream is down or stalled); every figure
// element carries its raw number in data-value, so scripts and tests read numbers, not
// formatted text. Every string from the site (addresses, kinds, notes, errors: they come
// from the configuration and from the miners) is written with textContent, never parsed
// as HTML. No library: the chart is drawn on a canvas here.
"use strict";

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en", { maximumSignificantDigits: 3 });
const whole = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const WINDOW_S = 3600;          // the chart's span, in seconds of the run
const POLL_MS = 2000;
const STATES = ["on", "asleep", "waking", "sleeping", "read-only", "unresponsive", "down"];
// Classes of style.css by state; a state the page does not know shows unstyled.
const STATE_CLASS = {
  on: "ok", waking: "warn", sleeping: "warn", asleep: "off", "read-only": "off", unresponsive: "warn", down: "down",
};

const state = {
  connection: "connecting",     // connecting | live | polling | late | offline | stopped | error
  source: null,
  retryTimer: null,
  pollTimer: null,
  lastFiguresAt: 0,
  points: [],                   // [seconds, budget_w, measured_w, usable_w]
  rows: new Map(),              // address -> its table row
  order: "",
};

// --- formatting ------------------------------------------------------------------------

const known = (v) => v !== null && v !== undefined && Number.isFinite(v);

function scaled(value, unit, prefixes) {
  if (!known(value)) return "–";
  let chosen = prefixes[0];
  for (const p of prefixes) if (Math.abs(value) >= p[1]) chosen = p;
  return `${number.format(value / chosen[1])} ${chosen[0]}${unit}`;
}

const SI = [["", 1], ["k", 1e3], ["M", 1e6], ["G", 1e9], ["T", 1e12], ["P", 1e15], ["E", 1e18]];
function watts(w) { return scaled(w, "W", SI.slice(0, 4)); }
function joules(j) { return scaled(j, "J", SI); }
function rate(hs) { return scaled(hs, "H/s", SI); }
function count(n) { return known(n) && n < 1e6 ? whole.format(n) : scaled(n, "", SI); }
function grams(g) { return known(g) && g >= 1e6 ? `${number.format(g / 1e6)} t` : scaled(g, "g", SI.slice(0, 2)); }
function jth(v) { return known(v) ? `${number.format(v)} J/TH` : "–"; }
function share(part, of) { return known(part) && known(of) && of > 0 ? `${number.format((100 * part) / of)} %` : "–"; }

function duration(seconds) {
  if (!known(seconds)) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function tickCost(seconds) {
  if (!known(seconds)) return "–";
  return seconds < 1 ? `${number.format(seconds * 1000)} ms` : `${number.format(seconds)} s`;
}

// --- writing figures -------------------------------------------------------------------

function put(id, text, value) {
  const el = $(id);
  el.textContent = text;
  el.dataset.value = known(value) ? String(value) : "";
}

function renderSite(site) {
  put("budget", watts(site.budget_w), site.budget_w);
  put("surplus", watts(site.surplus_w), site.surplus_w);
  put("measured", watts(site.measured_w), site.measured_w);
  put("measured-share", share(site.measured_w, site.budget_w), null);
  put("usable", watts(site.usable_w), site.usable_w);
  const held = known(site.budget_w) && known(site.usable_w) ? site.budget_w - site.usable_w : null;
  put("held-back", watts(held), held);
  put("absorbed", joules(site.absorbed_j), site.absorbed_j);
  put("budget-energy", joules(site.budget_energy_j), site.budget_energy_j);
  put("energy", joules(site.energy_j), site.energy_j);
  put("over-budget", joules(site.energy_over_budget_j), site.energy_over_budget_j);
  put("over-budget-share", share(site.energy_over_budget_j, site.budget_energy_j), null);
  $("over-budget").classList.toggle("warn", site.energy_over_budget_j > 0);
  put("curtailed", joules(site.curtailed_j), site.curtailed_j);
  put("hashes", count(site.hashes), site.hashes);
  put("ticks", whole.format(site.ticks), site.ticks);
  put("tick", `${number.format(site.tick_s)} s`, site.tick_s);
  put("tick-cost", tickCost(site.last_tick_cost_s), site.last_tick_cost_s);
  put("uptime", duration(site.seconds), site.seconds);
  put("policy", site.policy || "–", null);
  put("signal", site.signal || "–", null);
  const signalError = $("signal-error");
  signalError.hidden = !site.signal_error;
  signalError.textContent = site.signal_error ? `the budget cannot be read, the site runs on zero: ${site.signal_error}` : "";
  renderBattery(site.battery);
  const withCo2 = known(site.co2_location_g) || known(site.co2_market_g);
  $("co2-figure").hidden = !withCo2;
  put("co2-location", grams(site.co2_location_g), site.co2_location_g);
  put("co2-market", grams(site.co2_market_g), site.co2_market_g);
  renderCounts(site.miners);
}

function renderBattery(battery) {
  const figure = $("battery-figure");
  const list = $("battery");
  figure.hidden = !battery;
  list.replaceChildren();
  if (!battery) return;
  for (const [key, value] of Object.entries(battery)) {
    const term = document.createElement("dt");
    term.textContent = key.replaceAll("_", " ");
    const detail = document.createElement("dd");
    detail.textContent = typeof value === "number" ? number.format(value) : String(value);
    list.append(term, detail);
  }
}

function renderCounts(miners) {
  const counts = new Map();
  for (const m of miners) counts.set(m.state, (counts.get(m.state) || 0) + 1);
  const on = counts.get("on") || 0;
  put("miners-on", `${on} of ${miners.length} on`, on);
  const parts = [];
  for (const name of [...STATES, ...[...counts.keys()].filter((s) => !STATES.includes(s))]) {
    if (name !== "on" && counts.get(name)) parts.push(`${counts.get(name)} ${name}`);
  }
  $("miners-states").textContent = parts.join(" · ") || "all on";
  $("miners-count").textContent = `${miners.length} miners`;
}

// --- the miners' table -------------------------------------------------------------------

const COLUMNS = ["rank", "address", "kind", "state", "watts", "allotted", "target", "hashrate", "jth", "energy",
  "control", "locked", "since", "note"];

function newRow(address) {
  const row = document.createElement("tr");
  row.dataset.address = address;
  for (const column of COLUMNS) {
    const td = document.createElement("td");
    td.dataset.column = column;
    row.appendChild(td);
  }
  return row;
}

function fill(td, text, value) {
  td.textContent = text;
  if (value !== undefined) td.dataset.value = known(value) ? String(value) : "";
}

function rankOrder(miners) {
  // The allocator's order (cheapest first), then the miners it does not steer, by address.
  return [...miners].sort((a, b) => {
    const ra = a.rank === null || a.rank === undefined ? Infinity : a.rank;
    const rb = b.rank === null || b.rank === undefined ? Infinity : b.rank;
    if (ra !== rb) return ra - rb;
    return a.address < b.address ? -1 : a.address > b.address ? 1 : 0;
  });
}

function renderMiners(miners) {
  const ordered = rankOrder(miners);
  const seen = new Set();
  for (const m of ordered) {
    let row = state.rows.get(m.address);
    if (!row) {
      row = newRow(m.address);
      state.rows.set(m.address, row);
    }
    seen.add(m.address);
    const [rank, address, kind, st, power, allotted, target, hashrate, eff, energy, control, locked, since, note] =
      row.children;
    fill(rank, known(m.rank) ? String(m.rank + 1) : "–", m.rank);
    fill(address, m.address);
    fill(kind, m.kind);
    fill(st, m.state);
    st.className = STATE_CLASS[m.state] || "";
    row.dataset.state = m.state;
    fill(power, watts(m.watts), m.watts);
    fill(allotted, watts(m.allotted_w), m.allotted_w);
    fill(target, watts(m.target_w), m.target_w);
    fill(hashrate, rate(m.hashrate_hs), m.hashrate_hs);
    fill(eff, jth(m.j_per_th), m.j_per_th);
    fill(energy, joules(m.energy_j), m.energy_j);
    fill(control, m.energy_source ? `${m.control} · ${m.energy_source}` : m.control);
    fill(locked, m.locked ? m.locked.replace("_", " ") : "");
    fill(since, known(m.since_s) ? `${duration(m.since_s)} ago` : "–", m.since_s);
    fill(note, m.error || m.note || "");
    note.className = m.error ? "down" : "muted";
  }
  for (const address of [...state.rows.keys()]) if (!seen.has(address)) state.rows.delete(address);
  const order = ordered.map((m) => m.address).join("\n");
  if (order !== state.order) {
    $("miners").replaceChildren(...ordered.map((m) => state.rows.get(m.address)));
    state.order = order;
  }
}

// --- chart -------------------------------------------------------------------------------

function addPoint(site) {
  const points = state.points;
  const last = points.length ? points[points.length - 1][0] : -Infinity;
  if (site.seconds < last) points.length = 0;  // a new controller: a new run
  else if (site.seconds === last) return;      // no tick since the last figures
  points.push([site.seconds, site.budget_w, site.measured_w, site.usable_w]);
  while (points.length && points[0][0] < site.seconds - WINDOW_S) points.shift();
  drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const points = state.points;
  canvas.dataset.points = String(points.length);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 960;
  const height = canvas.clientHeight || 260;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  const left = 64, right = 16, top = 10, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  ctx.fillStyle = "#6b7383";
  if (points.length < 2) {
    ctx.fillText(points.length ? "collecting…" : "no ticks yet", left + 8, top + 20);
    return;
  }
  const t1 = points[points.length - 1][0];
  const t0 = points[0][0];
  const span = Math.max(t1 - t0, 1);
  let top_w = 0;
  for (const p of points) for (const v of p.slice(1)) if (known(v) && v > top_w) top_w = v;
  top_w = top_w * 1.15 || 1;
  const x = (t) => left + ((t - t0) / span) * plotW;
  const y = (w) => top + plotH - (w / top_w) * plotH;

  ctx.strokeStyle = "#e2e5ea";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const gy = top + (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, gy);
    ctx.lineTo(left + plotW, gy);
    ctx.stroke();
    ctx.fillText(watts((top_w * (4 - i)) / 4), left - 6, gy);
  }
  ctx.textBaseline = "top";
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (span * i) / 4;
    ctx.textAlign = i === 0 ? "left" : i === 4 ? "right" : "center";  // the ends stay inside the canvas
    ctx.fillText(duration(t), x(t), top + plotH + 5);
  }

  const series = (index, colour, dashed, width_px) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width_px;
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.beginPath();
    let drawing = false;
    let lastY = 0;
    for (const p of points) {
      if (!known(p[index])) { drawing = false; continue; }
      const px = x(p[0]), py = y(p[index]);
      // A step: the budget and the allotment hold from one tick to the next.
      if (drawing) { ctx.lineTo(px, lastY); ctx.lineTo(px, py); } else ctx.moveTo(px, py);
      drawing = true;
      lastY = py;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  series(1, "#2e9d5b", true, 2);
  series(3, "#8a94a6", false, 1);
  series(2, "#d9822b", false, 2);
}

// --- connection ----------------------------------------------------------------------------

function setStatus(connection, text) {
  state.connection = connection;
  const el = $("status");
  el.dataset.state = connection;
  el.textContent = text;
  document.body.dataset.state = connection === "polling" ? "live" : connection;
}

function onSite(site, via) {
  state.lastFiguresAt = Date.now();
  if (state.connection !== via) setStatus(via, via === "live" ? "live" : "live (polling: the event stream is down)");
  renderSite(site);
  renderMiners(site.miners);
  addPoint(site);
  put("updated", `updated ${new Date().toLocaleTimeString()}`, Date.now() / 1000);
}

async function poll() {
  try {
    const response = await fetch("/api/site", { cache: "no-store" });
    if (response.ok) {
      onSite(await response.json(), "polling");
    } else if (state.connection !== "stopped") {
      const data = await response.json().catch(() => ({}));
      setStatus("error", `the site's figures cannot be read: ${data.error || response.statusText}`);
    }
  } catch (err) {
    if (state.connection !== "stopped") setStatus("offline", "cannot reach the site controller; retrying…");
  }
}

function startPolling() {
  if (state.pollTimer === null) {
    state.pollTimer = setInterval(poll, POLL_MS);
    poll();
  }
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function reconnectSoon() {
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(connect, POLL_MS);
}

function connect() {
  clearTimeout(state.retryTimer);
  if (state.source) state.source.close();
  if (typeof EventSource === "undefined") {
    startPolling();
    return;
  }
  const source = new EventSource("/api/events");
  state.source = source;
  source.addEventListener("site", (event) => {
    stopPolling();
    onSite(JSON.parse(event.data), "live");
  });
  source.addEventListener("fault", (event) => {
    state.lastFiguresAt = Date.now();
    setStatus("error", `the site's figures cannot be read: ${JSON.parse(event.data).error}`);
  });
  source.addEventListener("bye", () => {
    source.close();
    setStatus("stopped", "the site controller stopped; these are its last figures. Waiting for it to come back…");
    reconnectSoon();
  });
  source.onerror = () => {
    if (state.connection !== "stopped") setStatus("offline", "cannot reach the site controller; reconnecting…");
    startPolling();
    if (source.readyState === EventSource.CLOSED) reconnectSoon();
  };
}

function watchdog() {
  if (state.connection !== "live" && state.connection !== "late") return;
  const quiet = Math.round((Date.now() - state.lastFiguresAt) / 1000);
  if (quiet >= 10) {
    // A proxy may hold the stream back: read the figures by polling until it speaks again.
    setStatus("late", `no update for ${quiet} s; polling`);
    startPolling();
    connect();
  } else if (quiet >= 4) {
    setStatus("late", `no update for ${quiet} s`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawChart();
  connect();
  setInterval(watchdog, 1000);
  window.addEventListener("resize", drawChart);
});
