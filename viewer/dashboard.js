// The dashboard: the server's coordination views (teamCoverage, goalRollup, staleGoalStories,
// openBlockers) drawn as plain SVG and lists, asked again in one query whenever a coordination
// event arrives. The URL may fix what is shown: ?team=<id>&to=YYYY-MM-DD&days=7&weekdays=0&asOf=<RFC 3339>.

import { adoptTokenFromUrl, all, query } from "./graphql.js";
import { LiveEvents } from "./live.js";
import { el, humanize, setState, statusBadge } from "./render.js";

const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["ON_TRACK", "AT_RISK", "OFF_TRACK", "COMPLETED", "PAUSED"];
const COUNT_KEYS = { ON_TRACK: "onTrack", AT_RISK: "atRisk", OFF_TRACK: "offTrack", COMPLETED: "completed", PAUSED: "paused" };
const STALE_DAYS = 14;
const REFRESH_DELAY_MS = 150;
const CELL_STATES = {
  checked: "Checked in",
  blocked: "Checked in, with blockers",
  missing: "Missing",
  off: "Not expected",
};

const DASHBOARD = `query Dashboard($team: ID!, $from: Date!, $to: Date!, $asOf: DateTime, $weekdays: Boolean!, $days: Int!) {
  teamCoverage(teamId: $team, from: $from, to: $to, asOf: $asOf, weekdaysOnly: $weekdays) {
    teamName from to
    members { actorId name timezone localDate expectedDays checkedInDays missedDays }
    days { date expected checkedIn missing cells { actorId expected checkins blockers } }
  }
  openBlockers(teamId: $team, asOf: $asOf) { checkinId actorName date ageDays blockers timezone }
  staleGoalStories(days: $days, asOf: $asOf) { id title status progressPercent lastUpdateDate daysSinceUpdate }
  goalRollup { total withProgress averageProgress statusCounts { onTrack atRisk offTrack completed paused none } }
}`;

const params = new URLSearchParams(location.search);
const state = { teams: [], team: params.get("team"), version: 0, pending: null, running: false, again: false };

function svg(tag, attributes = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of [].concat(children)) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function range() {
  const days = Number(document.getElementById("range-select").value) || 7;
  const to = params.get("to") || isoDate(new Date());
  const last = new Date(`${to}T12:00:00`);
  const first = new Date(last);
  first.setDate(first.getDate() - (days - 1));
  return { from: isoDate(first), to };
}

function cellState(cell) {
  if (cell.checkins > 0) return cell.blockers.length ? "blocked" : "checked";
  return cell.expected ? "missing" : "off";
}

function shortName(name, most) {
  return name.length > most ? `${name.slice(0, most - 1)}…` : name;
}

// ---------------------------------------------------------------- coverage heatmap

function heatmap(coverage) {
  const narrow = window.matchMedia("(max-width: 720px)").matches;
  const label = narrow ? 92 : 170;
  const cell = narrow ? 30 : 34;
  const gap = 3;
  const head = 34;
  const width = label + coverage.days.length * (cell + gap);
  const height = head + coverage.members.length * (cell + gap);
  const chart = svg("svg", {
    class: "heatmap", role: "img", width, height, viewBox: `0 0 ${width} ${height}`,
    "aria-label": `Check-ins of ${coverage.teamName}, ${coverage.members.length} members by ${coverage.days.length} days`,
  });
  coverage.days.forEach((day, column) => {
    const date = new Date(`${day.date}T12:00:00`);
    const x = label + column * (cell + gap) + cell / 2;
    chart.append(svg("text", { x, y: 13, class: "day-name", "text-anchor": "middle" },
      date.toLocaleDateString("en", { weekday: "short" }).slice(0, 2)));
    chart.append(svg("text", { x, y: 28, class: "day-number", "text-anchor": "middle" }, String(date.getDate())));
  });
  coverage.members.forEach((member, row) => {
    const y = head + row * (cell + gap);
    chart.append(svg("text", { x: 0, y: y + cell / 2 + 4, class: "member" },
      [shortName(member.name, narrow ? 11 : 22), svg("title", {}, `${member.name} (${member.timezone || "UTC"})`)]));
    coverage.days.forEach((day, column) => {
      const c = day.cells[row];
      const kind = cellState(c);
      const blockers = c.blockers.length ? `; blockers: ${c.blockers.join("; ")}` : "";
      chart.append(svg("rect", {
        x: label + column * (cell + gap), y, width: cell, height: cell, rx: 4,
        class: `cell ${kind}`, "data-actor": member.actorId, "data-date": day.date, "data-state": kind,
      }, svg("title", {}, `${member.name}, ${day.date}: ${CELL_STATES[kind]}${blockers}`)));
    });
  });
  const legend = el("ul", { class: "legend" }, Object.entries(CELL_STATES).map(([kind, text]) =>
    el("li", {}, [el("span", { class: `swatch ${kind}`, "aria-hidden": "true" }), text])));
  return el("div", {}, [el("div", { class: "chart-scroll", tabindex: "0", role: "region", "aria-label": "Coverage heatmap" }, chart), legend]);
}

function renderCoverage(coverage) {
  const section = document.getElementById("coverage");
  const summary = document.getElementById("coverage-summary");
  if (!coverage) {
    summary.textContent = "";
    setState(section, "empty", "No team to show.");
    return;
  }
  const expected = coverage.members.reduce((n, m) => n + m.expectedDays, 0);
  const missed = coverage.members.reduce((n, m) => n + m.missedDays, 0);
  const checked = expected - missed;
  const share = expected ? Math.round((100 * checked) / expected) : 0;
  summary.textContent = coverage.members.length
    ? `${checked} of ${expected} expected check-ins (${share}%), ${coverage.from} to ${coverage.to}`
    : "";
  summary.dataset.checked = String(checked);
  summary.dataset.expected = String(expected);
  if (!coverage.members.length) {
    setState(section, "empty", `${coverage.teamName} has no members.`);
    section.querySelector(".content").replaceChildren();
    return;
  }
  setState(section, "ready", "");
  section.querySelector(".content").replaceChildren(heatmap(coverage));
}

// ---------------------------------------------------------------- goals by status

function renderGoals(rollup) {
  const section = document.getElementById("goals-by-status");
  if (!rollup || !rollup.total) {
    setState(section, "empty", "No goal stories yet.");
    section.querySelector(".content").replaceChildren();
    return;
  }
  const rows = [...STATUSES.map((s) => [s, rollup.statusCounts[COUNT_KEYS[s]]]), ["NONE", rollup.statusCounts.none]];
  const most = Math.max(1, ...rows.map(([, n]) => n));
  const label = 92;
  const bar = 200;
  const line = 26;
  const width = label + bar + 40;
  const chart = svg("svg", {
    class: "bars", role: "img", viewBox: `0 0 ${width} ${rows.length * line}`, width, height: rows.length * line,
    "aria-label": `Goals by status: ${rows.map(([s, n]) => `${n} ${humanize(s === "NONE" ? "no status" : s).toLowerCase()}`).join(", ")}`,
  });
  rows.forEach(([status, count], index) => {
    const y = index * line;
    const kind = status.toLowerCase().replace(/_/g, "-");
    chart.append(svg("text", { x: 0, y: y + 17, class: "bar-label" }, status === "NONE" ? "No status" : humanize(status)));
    chart.append(svg("rect", { x: label, y: y + 4, width: Math.max(2, (bar * count) / most), height: line - 8, rx: 3,
      class: `bar ${kind}`, "data-status": status, "data-count": count }));
    chart.append(svg("text", { x: label + (bar * count) / most + 6, y: y + 17, class: "bar-count" }, String(count)));
  });
  const average = rollup.averageProgress === null ? "no progress reported" : `average progress ${rollup.averageProgress}%`;
  setState(section, "ready", "");
  section.querySelector(".content").replaceChildren(chart,
    el("p", { class: "summary", "data-total": rollup.total }, `${rollup.total} goal stories, ${average} (over ${rollup.withProgress}).`));
}

// ---------------------------------------------------------------- lists

function renderStale(goals) {
  const section = document.getElementById("stale-goals");
  if (!goals.length) {
    setState(section, "empty", "No stale goal stories.");
    section.querySelector(".content").replaceChildren();
    return;
  }
  setState(section, "ready", "");
  section.querySelector(".content").replaceChildren(el("ul", { class: "rows" }, goals.map((g) =>
    el("li", { "data-id": g.id }, [
      el("strong", {}, g.title), " ", statusBadge(g.status),
      el("span", { class: "meta" }, g.lastUpdateDate
        ? `last update ${g.lastUpdateDate}, ${g.daysSinceUpdate} days ago`
        : `no update in ${g.daysSinceUpdate} days`),
    ]))));
}

function renderBlockers(blockers) {
  const section = document.getElementById("open-blockers");
  if (!blockers.length) {
    setState(section, "empty", "No open blockers.");
    section.querySelector(".content").replaceChildren();
    return;
  }
  setState(section, "ready", "");
  section.querySelector(".content").replaceChildren(el("ul", { class: "rows" }, blockers.map((b) =>
    el("li", { "data-id": b.checkinId }, [
      el("strong", {}, b.actorName),
      el("span", { class: "meta" }, `${b.date}, ${b.ageDays === 0 ? "today" : `${b.ageDays} day${b.ageDays === 1 ? "" : "s"} old`}`),
      el("ul", { class: "plain blocker-text" }, b.blockers.map((text) => el("li", {}, text))),
    ]))));
}

// ---------------------------------------------------------------- loading

async function refresh() {
  if (state.running) {
    state.again = true;
    return;
  }
  state.running = true;
  try {
    const { from, to } = range();
    const data = state.team
      ? await query(DASHBOARD, {
        team: state.team, from, to, asOf: params.get("asOf"),
        weekdays: document.getElementById("weekdays").checked, days: STALE_DAYS,
      })
      : null;
    renderCoverage(data && data.teamCoverage);
    renderGoals(data && data.goalRollup);
    renderStale(data ? data.staleGoalStories : []);
    renderBlockers(data ? data.openBlockers : []);
    state.version += 1;
    document.body.dataset.version = String(state.version);
    document.body.dataset.loaded = "true";
  } catch (error) {
    for (const id of ["coverage", "goals-by-status", "stale-goals", "open-blockers"]) {
      setState(document.getElementById(id), "error", `Could not load the dashboard: ${error.message}`, true);
    }
    document.body.dataset.loaded = "true";
  } finally {
    state.running = false;
    if (state.again) {
      state.again = false;
      refresh();
    }
  }
}

function soon() {
  clearTimeout(state.pending);
  state.pending = setTimeout(refresh, REFRESH_DELAY_MS);
}

async function latestCursor() {
  try {
    const result = await query("{ coordinationEvents(first: 1, orderBy: [{ field: CURSOR, direction: DESC }]) { nodes { cursor } } }");
    const [last] = result.coordinationEvents.nodes;
    return last ? last.cursor : null;
  } catch {
    return null;
  }
}

async function start() {
  adoptTokenFromUrl(); // a ?token= link: the tab's token, as the viewer takes it (viewer/graphql.js)
  document.getElementById("stale-days").textContent = String(STALE_DAYS);
  const rangeSelect = document.getElementById("range-select");
  if (params.get("days")) rangeSelect.value = params.get("days");
  if (params.get("weekdays") === "0") document.getElementById("weekdays").checked = false;
  const select = document.getElementById("team-select");
  try {
    state.teams = await all("teams", "id name", { orderBy: [{ field: "NAME" }] });
  } catch (error) {
    setState(document.getElementById("coverage"), "error", `Could not load the teams: ${error.message}`);
  }
  if (!state.teams.some((t) => t.id === state.team)) state.team = state.teams.length ? state.teams[0].id : null;
  select.replaceChildren(...state.teams.map((t) => el("option", { value: t.id, selected: t.id === state.team }, t.name)));
  select.disabled = state.teams.length === 0;
  select.addEventListener("change", () => { state.team = select.value; refresh(); });
  rangeSelect.addEventListener("change", refresh);
  document.getElementById("weekdays").addEventListener("change", refresh);
  document.getElementById("controls").addEventListener("submit", (event) => event.preventDefault());
  // The cursor comes first: whatever commits after it arrives as an event, so nothing falls between.
  const after = await latestCursor();
  await refresh();

  const status = document.getElementById("live-status");
  const live = new LiveEvents({
    after,
    onEvent: soon,
    onState: (kind, text, transport) => {
      status.dataset.state = kind;
      if (transport) status.dataset.transport = transport;
      status.querySelector(".text").textContent = text;
      if (kind === "live") soon(); // anything committed while (re)connecting
    },
  });
  live.start(params.get("live") || "subscription");
}

start();
