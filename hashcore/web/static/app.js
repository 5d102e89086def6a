// The hashcore dashboard. Figures arrive as server-sent events from /api/events, at most
// one a second; every figure element carries its raw number in data-value so scripts and
// tests read numbers, not formatted text. No library: the chart is drawn on a canvas here.
"use strict";

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en", { maximumSignificantDigits: 3 });
const whole = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const HOUR = 3600;
const DAY = 86400;

const state = {
  connection: "connecting",   // connecting | live | late | offline | stopped | error
  source: null,
  retryTimer: null,
  lastEventAt: 0,
  reloadOnLive: false,
  span: "hour",
  hour: [],                   // [t, hashrate_hs, watts, budget_w]
  day: [],
  control: false,
  pools: -1,
  backends: "",
};

// --- formatting ------------------------------------------------------------------------

function rate(hs) {
  if (hs === null || hs === undefined) return "–";
  let value = hs;
  for (const unit of ["H/s", "kH/s", "MH/s", "GH/s", "TH/s"]) {
    if (Math.abs(value) < 1000 || unit === "TH/s") return `${value.toFixed(2)} ${unit}`;
    value /= 1000;
  }
  return "–";
}

function si(value, unit) {
  if (value === null || value === undefined) return "–";
  const prefixes = [["", 1], ["k", 1e3], ["M", 1e6], ["G", 1e9]];
  let chosen = prefixes[0];
  for (const p of prefixes) if (Math.abs(value) >= p[1]) chosen = p;
  return `${number.format(value / chosen[1])} ${chosen[0]}${unit}`;
}

function watts(w) { return w === null || w === undefined ? "–" : `${(w).toFixed(1)} W`; }
function jth(v) { return v === null || v === undefined ? "–" : `${number.format(v)} J/TH`; }
function pct(f) { return f === null || f === undefined ? "–" : `${Math.round(f * 100)} %`; }

function duration(seconds) {
  const s = Math.floor(seconds || 0);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function energyLabel(e) {
  const source = e.energy_source || "none";
  if (source === "none") return { text: "not measured", exact: false, cls: "estimate" };
  if (e.energy_exact) return { text: `measured (${source})`, exact: true, cls: "measured" };
  if (source === "estimate") return { text: "estimate, not measured", exact: false, cls: "estimate" };
  return { text: `${source}, estimate`, exact: false, cls: "estimate" };
}

// --- writing figures -------------------------------------------------------------------

function put(id, text, value) {
  const el = $(id);
  if (!el) return;
  el.textContent = text;
  el.dataset.value = value === null || value === undefined ? "" : String(value);
}

function cell(row, id, text, value, cls) {
  const td = document.createElement("td");
  if (id) td.id = id;
  td.textContent = text;
  if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function slug(name) { return String(name).toLowerCase().replace(/[^a-z0-9_-]/g, "-"); }

function renderFigures(snap) {
  const s = snap.summary;
  const live = snap.live;
  put("hashrate", rate(live.recent_hashrate_hs), live.recent_hashrate_hs);
  put("hashrate-avg", rate(s.hashrate_hs), s.hashrate_hs);
  put("hashes", whole.format(s.hashes), s.hashes);
  put("accepted", whole.format(s.accepted), s.accepted);
  put("rejected", whole.format(s.rejected), s.rejected);
  put("stale", whole.format(s.stale), s.stale);
  put("blocks", whole.format(s.blocks.candidates), s.blocks.candidates);
  put("blocks-accepted", whole.format(s.blocks.accepted), s.blocks.accepted);
  put("discarded", whole.format(s.discarded), s.discarded);
  put("duplicates", whole.format(s.duplicates), s.duplicates);
  put("power", watts(s.recent_watts), s.recent_watts);
  put("power-avg", watts(s.watts), s.watts);
  put("jh", s.j_per_hash === null || s.j_per_hash === undefined ? "– J/H" : `${s.j_per_hash.toExponential(2)} J/H`,
    s.j_per_hash);
  put("energy", si(s.joules, "J"), s.joules);
  put("jth", jth(s.j_per_th), s.j_per_th);
  const label = energyLabel(s);
  put("energy-source", label.text, s.energy_source);
  $("energy-source").className = `sub ${label.cls}`;
  $("energy-source").dataset.exact = String(label.exact);
  $("energy-note").textContent = label.exact ? "" : `energy: ${s.energy_note || "not measured"}`;
  put("duty", pct(live.duty), live.duty);
  put("uptime", duration(s.seconds), s.seconds);
  put("active-pool", live.active_pool || "connecting…", live.active_pool || "");
  const minerState = $("miner-state");
  minerState.textContent = snap.state;
  minerState.dataset.state = snap.state;
  const t = snap.throttle;
  if (t) {
    put("budget", watts(t.budget_w), t.budget_w);
    put("throttle-state", t.state || "–", t.state);
    put("throttle-policy", t.policy || "–", t.policy);
    put("throttle-power", t.power_w === null ? "– W" : `${watts(t.power_w)} drawn`, t.power_w);
  } else {
    put("budget", "none", null);
    put("throttle-state", snap.throttle_error ? "unavailable" : "off", null);
    put("throttle-policy", "–", null);
    put("throttle-power", "no throttle", null);
  }
}

function renderBackends(backends) {
  const body = $("backends");
  const names = Object.keys(backends);
  if (names.join("\n") !== state.backends) {
    body.replaceChildren();
    for (const name of names) {
      const row = document.createElement("tr");
      row.id = `backend-${slug(name)}`;
      body.appendChild(row);
    }
    state.backends = names.join("\n");
  }
  for (const name of names) {
    const b = backends[name];
    const id = `backend-${slug(name)}`;
    const row = $(id);
    row.replaceChildren();
    cell(row, `${id}-name`, name);
    const st = backendState(b.state || "mining");
    cell(row, `${id}-state`, b.state || "mining", null, st);
    cell(row, null, b.path || "–");
    cell(row, `${id}-threads`, `${b.active_threads}/${b.threads}`, b.active_threads);
    cell(row, `${id}-hashrate`, rate(b.recent_hashrate_hs), b.recent_hashrate_hs);
    cell(row, `${id}-hashrate-avg`, rate(b.hashrate_hs), b.hashrate_hs);
    cell(row, `${id}-hashes`, whole.format(b.hashes), b.hashes);
    cell(row, `${id}-duty`, pct(b.duty), b.duty);
    cell(row, `${id}-power`, watts(b.watts), b.watts);
    cell(row, `${id}-jth`, jth(b.j_per_th), b.j_per_th);
    const label = energyLabel(b);
    cell(row, `${id}-energy-source`, label.text, b.energy_source, label.cls);
  }
}

function backendState(text) {
  // The engine's words: mining, idle, "retrying: why", "failed: why".
  if (text.startsWith("failed")) return "down";
  if (text.startsWith("retrying")) return "warn";
  return "ok";
}

function poolState(p, active) {
  if (!p.enabled) return ["disabled", "off"];
  if (p.connected && active) return ["mining", "ok"];
  if (p.connected) return ["connected, standby", "ok"];
  return ["down", "down"];
}

function renderPools(pools, activeUrl) {
  const body = $("pools");
  if (pools.length !== state.pools) {
    body.replaceChildren();
    pools.forEach((_, i) => {
      const row = document.createElement("tr");
      row.id = `pool-${i}`;
      body.appendChild(row);
    });
    state.pools = pools.length;
  }
  pools.forEach((p, i) => {
    const id = `pool-${i}`;
    const row = $(id);
    const active = p.url === activeUrl;
    const [text, cls] = poolState(p, active);
    row.className = active ? "active" : "";
    row.replaceChildren();
    cell(row, null, String(p.priority + 1), p.priority);
    cell(row, `${id}-url`, p.url);
    cell(row, null, p.user || "–");
    cell(row, `${id}-state`, text, text, cls);
    cell(row, `${id}-difficulty`, p.difficulty === null ? "–" : number.format(p.difficulty), p.difficulty);
    cell(row, `${id}-accepted`, whole.format(p.accepted), p.accepted);
    cell(row, `${id}-rejected`, whole.format(p.rejected), p.rejected);
    cell(row, `${id}-stale`, whole.format(p.stale), p.stale);
    cell(row, null, whole.format(p.connects), p.connects);
    cell(row, `${id}-error`, p.last_error || "");
    const actions = cell(row, null, "");
    if (state.control && !active) {
      const button = document.createElement("button");
      button.type = "button";
      button.id = `${id}-switch`;
      button.textContent = "switch to";
      button.addEventListener("click", () => control("pool", { index: i }));
      actions.appendChild(button);
    }
  });
}

function render(snap, record) {
  state.control = Boolean(snap.control);
  $("controls-on").hidden = !state.control;
  $("controls-off").hidden = state.control;
  renderFigures(snap);
  renderBackends(snap.summary.backends);
  renderPools(snap.summary.pools, snap.live.active_pool);
  if (record) {
    addPoint(snap.point);
    put("updated", `updated ${new Date(snap.time * 1000).toLocaleTimeString()}`, snap.time);
  }
}

// --- chart -------------------------------------------------------------------------------

function addPoint(point) {
  const hour = state.hour;
  if (hour.length && point[0] < hour[hour.length - 1][0]) hour.length = 0;  // a new miner
  hour.push(point);
  while (hour.length && hour[0][0] < point[0] - HOUR) hour.shift();
  drawChart();
}

async function loadHistory(span) {
  try {
    const response = await fetch(`/api/history?span=${span}`, { cache: "no-store" });
    if (!response.ok) return;
    const data = await response.json();
    state[span] = data.points;
    drawChart();
  } catch (err) {
    // offline: the event stream's error handler already says so
  }
}

function scaleOf(max) {
  for (const [factor, unit] of [[1e12, "TH/s"], [1e9, "GH/s"], [1e6, "MH/s"], [1e3, "kH/s"]]) {
    if (max >= factor) return [factor, unit];
  }
  return [1, "H/s"];
}

function drawChart() {
  const canvas = $("chart");
  const points = state.span === "hour" ? state.hour : state.day;
  canvas.dataset.points = String(points.length);
  canvas.dataset.span = state.span;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 960;
  const height = canvas.clientHeight || 260;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  const left = 72, right = 56, top = 10, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  ctx.strokeStyle = "#e2e5ea";
  ctx.fillStyle = "#6b7383";
  if (points.length < 2) {
    ctx.fillText(points.length ? "collecting…" : "no figures yet", left + 8, top + 20);
    return;
  }
  const t1 = points[points.length - 1][0];
  const t0 = Math.max(points[0][0], t1 - (state.span === "hour" ? HOUR : DAY));
  const span = Math.max(t1 - t0, 1);
  const maxOf = (index) => points.reduce((m, p) => (p[index] !== null && p[index] > m ? p[index] : m), 0);
  const maxRate = maxOf(1) * 1.15 || 1;
  const maxWatts = Math.max(maxOf(2), maxOf(3)) * 1.15 || 1;
  const [factor, unit] = scaleOf(maxRate);
  const x = (t) => left + ((t - t0) / span) * plotW;
  const yRate = (v) => top + plotH - (v / maxRate) * plotH;
  const yWatts = (v) => top + plotH - (v / maxWatts) * plotH;

  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const y = top + (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + plotW, y);
    ctx.stroke();
    ctx.fillStyle = "#2f6fd6";
    ctx.textAlign = "right";
    ctx.fillText(`${number.format((maxRate * (4 - i)) / 4 / factor)} ${unit}`, left - 6, y);
    ctx.fillStyle = "#d9822b";
    ctx.textAlign = "left";
    ctx.fillText(`${number.format((maxWatts * (4 - i)) / 4)} W`, left + plotW + 6, y);
  }
  ctx.fillStyle = "#6b7383";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const withSeconds = span < 600;
  const ticks = Math.max(1, Math.min(4, Math.floor(span)));
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (span * i) / ticks;
    const d = new Date(t * 1000);
    const text = withSeconds ? d.toLocaleTimeString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    ctx.fillText(text, x(t), top + plotH + 5);
  }

  const gap = state.span === "hour" ? 5 : 180;  // seconds: three missed samples
  const line = (index, y, colour, dashed, step) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.beginPath();
    let drawing = false;
    let lastY = 0;
    let lastT = -Infinity;
    for (const p of points) {
      if (p[0] < t0) continue;
      if (p[index] === null) { drawing = false; continue; }
      if (p[0] - lastT > gap) drawing = false;  // no figures then (the miner was stopped): no line
      lastT = p[0];
      const px = x(p[0]), py = y(p[index]);
      if (!drawing) ctx.moveTo(px, py);
      else if (step) { ctx.lineTo(px, lastY); ctx.lineTo(px, py); }
      else ctx.lineTo(px, py);
      drawing = true;
      lastY = py;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  line(3, yWatts, "#2e9d5b", true, true);
  line(2, yWatts, "#d9822b", false, false);
  line(1, yRate, "#2f6fd6", false, false);
}

function chooseSpan(span) {
  state.span = span;
  $("span-hour").setAttribute("aria-pressed", String(span === "hour"));
  $("span-day").setAttribute("aria-pressed", String(span === "day"));
  if (span === "day") loadHistory("day");
  drawChart();
}

// --- bench ---------------------------------------------------------------------------------

async function loadBench() {
  try {
    const response = await fetch("/api/bench", { cache: "no-store" });
    if (!response.ok) return;
    const data = await response.json();
    const body = $("bench");
    body.replaceChildren();
    data.rows.forEach((r, i) => {
      const row = document.createElement("tr");
      row.id = `bench-${i}`;
      cell(row, null, r.backend);
      cell(row, null, r.path || "–");
      cell(row, null, String(r.threads ?? "–"), r.threads);
      cell(row, `bench-${i}-hashrate`, rate(r.hashrate_hs), r.hashrate_hs);
      cell(row, null, rate(r.per_thread_hs), r.per_thread_hs);
      cell(row, null, r.ratio_per_thread === null ? "–" : r.ratio_per_thread.toFixed(3), r.ratio_per_thread);
      const base = r.baseline_hashrate_hs;
      cell(row, null, base && r.hashrate_hs !== null ? `${(r.hashrate_hs / base).toFixed(1)}×` : "–");
      cell(row, null, watts(r.watts), r.watts);
      cell(row, `bench-${i}-jth`, jth(r.j_per_th), r.j_per_th);
      const label = energyLabel(r);
      cell(row, null, label.text, r.energy_source, label.cls);
      body.appendChild(row);
    });
    const note = data.error || (data.rows.length ? (data.source ? `from ${data.source}` : "") :
      "no bench table given (hashcore bench --all --json > bench.json)");
    $("bench-note").textContent = note;
  } catch (err) {
    // offline: shown by the connection status
  }
}

// --- controls ------------------------------------------------------------------------------

function message(text, kind) {
  const el = $("control-message");
  el.textContent = text;
  el.dataset.kind = kind;
}

async function control(path, body) {
  const token = $("token").value.trim();
  if (!token) {
    message("enter the token printed when the miner started", "error");
    return;
  }
  try {
    const response = await fetch(`/api/control/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(body || {}),
      cache: "no-store",
    });
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) {
      message(data.error || response.statusText, "error");
      return;
    }
    sessionStorage.setItem("hashcore-token", token);
    message(data.message, "ok");
    if (data.stats) render(data.stats, false);
  } catch (err) {
    message(`the miner did not answer (${err.message || err})`, "error");
  }
}

function setupControls() {
  const fromLink = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (fromLink) {
    sessionStorage.setItem("hashcore-token", decodeURIComponent(fromLink[1]));
    history.replaceState(null, "", window.location.pathname);  // keep it out of the address bar
  }
  $("token").value = sessionStorage.getItem("hashcore-token") || "";
  $("pause").addEventListener("click", () => control("pause"));
  $("resume").addEventListener("click", () => control("resume"));
  $("set-target").addEventListener("click", () => {
    const value = $("target-watts").value.trim();
    if (value === "" || !(Number(value) >= 0)) {
      message("the power target is a number of watts, 0 or more", "error");
      return;
    }
    control("target", { watts: Number(value) });
  });
  $("clear-target").addEventListener("click", () => control("target", { watts: null }));
  $("span-hour").addEventListener("click", () => chooseSpan("hour"));
  $("span-day").addEventListener("click", () => chooseSpan("day"));
}

// --- connection ----------------------------------------------------------------------------

function setStatus(connection, text) {
  state.connection = connection;
  const el = $("status");
  el.dataset.state = connection;
  el.textContent = text;
  document.body.dataset.state = connection;
}

function reconnectSoon() {
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(connect, 2000);
}

function onFigures(snap, record) {
  state.lastEventAt = Date.now();
  if (snap.state === "error") {
    setStatus("error", `the miner's figures cannot be read: ${snap.error}`);
  } else if (state.connection !== "live") {
    setStatus("live", "live");
  }
  if (state.reloadOnLive) {
    state.reloadOnLive = false;
    loadHistory("hour");
    if (state.span === "day") loadHistory("day");
    loadBench();
  }
  render(snap, record);
}

async function loadStats() {
  // The stream carries the next tick; this fills the page at once.
  try {
    const response = await fetch("/api/stats", { cache: "no-store" });
    if (response.ok) onFigures(await response.json(), false);
  } catch (err) {
    // the stream's error handler says the miner is unreachable
  }
}

function connect() {
  clearTimeout(state.retryTimer);
  if (state.source) state.source.close();
  const source = new EventSource("/api/events");
  state.source = source;
  source.onopen = loadStats;
  source.addEventListener("stats", (event) => onFigures(JSON.parse(event.data), true));
  source.addEventListener("bye", () => {
    source.close();
    state.reloadOnLive = true;
    setStatus("stopped", "the miner stopped; these are its last figures. Waiting for it to come back…");
    reconnectSoon();
  });
  source.onerror = () => {
    state.reloadOnLive = true;
    if (state.connection !== "stopped") setStatus("offline", "cannot reach the miner; reconnecting…");
    if (source.readyState === EventSource.CLOSED) reconnectSoon();
  };
}

function watchdog() {
  if (state.connection !== "live" && state.connection !== "late") return;
  const quiet = Math.round((Date.now() - state.lastEventAt) / 1000);
  if (quiet >= 10) {
    state.reloadOnLive = true;
    setStatus("offline", `no update for ${quiet} s; reconnecting…`);
    connect();
  } else if (quiet >= 4) {
    setStatus("late", `no update for ${quiet} s`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupControls();
  drawChart();
  loadHistory("hour");
  loadBench();
  connect();
  setInterval(watchdog, 1000);
  setInterval(() => { if (state.span === "day") loadHistory("day"); }, 60000);
  setInterval(loadBench, 60000);
  window.addEventListener("resize", drawChart);
});
