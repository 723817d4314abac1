// The operator page: start a unit, follow its steps live, answer its prompts, see its verdict.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const auth = token ? { Authorization: "Bearer " + token } : {};
const VERDICT = { passed: ["PASS", "pass"], failed: ["FAIL", "fail"], errored: ["ERROR", "error"],
                  terminated: ["STOPPED", "stopped"], aborted: ["STOPPED", "stopped"] };
let pattern = null;
let currentRun = null;

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: { "Content-Type": "application/json", ...auth },
                                  body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.join("\n") : (data.detail || res.statusText);
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

function text(v) { return v === null || v === undefined ? "" : String(v); }
function num(v) { return typeof v === "number" ? String(Number(v.toPrecision(6))) : text(v); }

function limitText(l) {
  if (!l) return "";
  const u = l.units ? " " + l.units : "";
  if (l.equals !== null && l.equals !== undefined) return "= " + JSON.stringify(l.equals);
  if (l.pattern) return "matches /" + l.pattern + "/";
  const lo = l.low !== null && l.low !== undefined ? num(l.low) + " ≤ " : "";
  const hi = l.high !== null && l.high !== undefined ? " ≤ " + num(l.high) : "";
  return lo || hi ? lo + "x" + hi + u : "";
}

function stepRow(path) {
  let row = document.querySelector(`#steps tr[data-step="${CSS.escape(path)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.step = path;
    row.innerHTML = "<td></td><td></td><td></td><td></td><td></td>";
    row.cells[0].textContent = path;
    $("steps").tBodies[0].appendChild(row);
  }
  return row;
}

function addMeasurement(e) {
  const row = document.createElement("tr");
  row.className = "measurement";
  row.dataset.step = e.step_path + "#m";
  const value = e.value !== null && e.value !== undefined ? num(e.value) : text(e.text);
  const cells = ["", e.name + (e.retry ? " (attempt " + (e.retry + 1) + ")" : ""),
                 value + (e.units ? " " + e.units : "") + (e.marginal ? " (marginal)" : ""), limitText(e.limit), e.outcome];
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c; row.appendChild(td); }
  row.cells[4].className = "o-" + e.outcome;
  const anchor = stepRow(e.step_path);
  let last = anchor;
  while (last.nextSibling && last.nextSibling.dataset.step === e.step_path + "#m") last = last.nextSibling;
  last.after(row);
}

function showVerdict(outcome, detail, runId) {
  const [word, cls] = VERDICT[outcome] || ["ERROR", "error"];
  $("banner").hidden = false;
  $("verdict").textContent = word;
  $("verdict").className = cls;
  $("verdict-detail").textContent = detail || "";
  if (runId) {
    $("report-link").hidden = false;
    $("report-link").href = "/api/runs/" + runId + "/report" + (token ? "?token=" + encodeURIComponent(token) : "");
  } else {
    $("report-link").hidden = true;
  }
}

function onEvent(e) {
  switch (e.event_type) {
    case "run.started":
      currentRun = e.run_id;
      $("steps").tBodies[0].innerHTML = "";
      $("banner").hidden = true;
      $("unit").textContent = text(e.dut_serial) + " · " + text(e.sequence_name);
      setRunning(true);
      break;
    case "test.step_started": {
      const row = stepRow(e.step_path);
      row.classList.add("running");
      break;
    }
    case "test.measurement": addMeasurement(e); break;
    case "test.step_ended": {
      const row = stepRow(e.step_path);
      row.classList.remove("running");
      row.cells[4].textContent = e.outcome;
      row.cells[4].className = "o-" + e.outcome;
      if (e.error && e.outcome !== "passed" && e.outcome !== "done") row.cells[3].textContent = e.error;
      break;
    }
    case "dialog.opened": openPrompt(e); break;
    case "dialog.responded": if ($("prompt").open) $("prompt").close(); break;
    case "run.ended": showVerdict(e.outcome, e.error, e.run_id); break;
    case "station.error": $("message").textContent = e.message; break;
    case "station.idle":
      setRunning(false);
      if (e.last && !e.last.run_id) showVerdict("errored", e.last.error, null);
      loadRuns();
      $("serial").value = "";
      $("serial").focus();
      break;
  }
}

function openPrompt(e) {
  $("prompt-message").textContent = e.message;
  const buttons = $("prompt-buttons"), input = $("prompt-input");
  buttons.innerHTML = ""; input.innerHTML = "";
  const answer = async (value) => {
    try { await api("POST", "/api/prompts/" + e.prompt_id, { answer: value }); $("prompt").close(); }
    catch (err) { $("message").textContent = err.message; $("prompt").close(); }
  };
  const button = (label, value, id) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; if (id) b.id = id;
    b.addEventListener("click", () => answer(typeof value === "function" ? value() : value));
    buttons.appendChild(b);
  };
  if (e.prompt_type === "confirm") { button("Yes", true, "prompt-yes"); button("No", false, "prompt-no"); }
  else if (e.prompt_type === "choice") { for (const c of e.choices || []) button(c, c); }
  else {
    const field = document.createElement("input"); field.id = "prompt-text"; input.appendChild(field);
    button("OK", () => field.value, "prompt-ok");
  }
  button("Abort", "abort", "prompt-abort");
  $("prompt").showModal();
}

function setRunning(on) {
  $("start-button").disabled = on;
  $("stop-button").disabled = !on;
}

async function loadRuns() {
  const runs = await api("GET", "/api/runs?limit=20").catch(() => []);
  const body = $("runs").tBodies[0];
  body.innerHTML = "";
  let passed = 0;
  for (const r of runs) {
    const tr = document.createElement("tr");
    const cells = [text(r.run_started_at).replace("T", " ").slice(0, 19), r.dut_serial, r.sequence_name, r.run_outcome];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = text(c); tr.appendChild(td); }
    tr.cells[3].className = "o-" + r.run_outcome;
    const link = document.createElement("a");
    link.href = "/api/runs/" + r.run_id + "/report" + (token ? "?token=" + encodeURIComponent(token) : "");
    link.textContent = "report"; link.target = "_blank";
    const td = document.createElement("td"); td.appendChild(link); tr.appendChild(td);
    body.appendChild(tr);
    if (r.run_outcome === "passed") passed += 1;
  }
  $("yield").textContent = runs.length ? `yield ${Math.round(100 * passed / runs.length)} % of the last ${runs.length}` : "";
}

async function init() {
  const st = await api("GET", "/api/station");
  $("station-name").textContent = st.station ? "· " + st.station : "";
  pattern = new RegExp(st.serial_pattern);
  const select = $("sequence");
  for (const s of st.sequences) { const o = document.createElement("option"); o.value = o.textContent = s; select.appendChild(o); }
  setRunning(Boolean(st.running));
  if (st.prompt) openPrompt(st.prompt);
  loadRuns();
  const source = new EventSource("/api/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  source.onopen = () => { $("connection").textContent = "connected"; };
  source.onerror = () => { $("connection").textContent = "reconnecting…"; };
  source.onmessage = (m) => onEvent(JSON.parse(m.data));
}

$("start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("message").textContent = "";
  const serial = $("serial").value.trim();
  if (pattern && !pattern.test(serial)) { $("message").textContent = `serial "${serial}" does not match ${pattern.source}: scan again`; return; }
  try {
    await api("POST", "/api/station/run", { serial, sequence: $("sequence").value, operator: $("operator").value || null });
    setRunning(true);
  } catch (err) { $("message").textContent = err.message; }
});
$("stop-button").addEventListener("click", () => api("POST", "/api/station/stop").catch((err) => { $("message").textContent = err.message; }));
init().catch((err) => { $("message").textContent = err.message; });
