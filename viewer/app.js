// The viewer: loads every entity through the GraphQL API, renders it, and re-fetches what an
// incoming coordination event changed. With access control on, every request carries the token entered
// in the page (or given once as ?token=), and the page says when it is missing, expired or short of a scope.

import { checkAccess, explain, setUpAccessForm, showAccess } from "./access.js";
import { accessProblem, adoptTokenFromUrl, all, query } from "./graphql.js";
import { LiveEvents } from "./live.js";
import { el, humanize, progressBar, renderTable, setState, statusBadge } from "./render.js";
import { Webhooks } from "./webhooks.js";

const SELECTIONS = {
  actors: "id actorType name role timezone",
  teams: "id name description memberIds",
  teamCheckins: "id actorId teamId date previously next blockers createdAt",
  goalStories: `id title description parentId actorIds teamIds timeframe { start end } createdAt
    latestUpdate { id date status progressPercent title }`,
  goalStoryUpdates: "id goalStoryId actorId date title content status progressPercent createdAt",
  coordinationEvents: "id cursor eventType actorId referenceId occurredAt",
};
const ORDER = {
  actors: [{ field: "NAME" }],
  teams: [{ field: "NAME" }],
  teamCheckins: [{ field: "DATE", direction: "DESC" }, { field: "CREATED_AT", direction: "DESC" }],
  goalStories: [{ field: "CREATED_AT" }, { field: "TITLE" }],
  goalStoryUpdates: [{ field: "DATE", direction: "DESC" }, { field: "CREATED_AT", direction: "DESC" }],
  coordinationEvents: [{ field: "CURSOR", direction: "DESC" }],
};
const SECTION_OF = {
  actors: "actors",
  teams: "teams",
  teamCheckins: "team-checkins",
  goalStories: "goal-stories",
  goalStoryUpdates: "goal-story-updates",
  coordinationEvents: "coordination-events",
};
// Which lists an event of each type can change.
const AFFECTS = {
  TEAM_CHECKIN: ["teamCheckins", "coordinationEvents"],
  GOAL_STORY_UPDATE: ["goalStoryUpdates", "goalStories", "coordinationEvents"],
};
const FRESH_MS = 8000;

const data = {};
const errors = {};
const fresh = new Set();
let selectedTeam = null;

const byId = (list) => new Map((list || []).map((row) => [row.id, row]));
const nameOf = (list, id) => {
  const row = byId(data[list]).get(id);
  return row ? row.name || row.title : id;
};

async function load(field) {
  const section = document.getElementById(SECTION_OF[field]);
  try {
    data[field] = await all(field, SELECTIONS[field], { orderBy: ORDER[field] });
    delete errors[field];
  } catch (error) {
    errors[field] = error.message;
    const problem = accessProblem(error);
    if (problem) {
      showAccess(problem); // a token that expired since the page loaded
      errors[field] = explain(problem);
    }
    if (!data[field]) setState(section, "error", `Could not load ${humanize(field).toLowerCase()}: ${error.message}`);
  }
}

function render() {
  renderEntityTables();
  renderGoalTree();
  renderCheckinsByDay();
}

function sectionFor(field, rows) {
  const section = document.getElementById(SECTION_OF[field]);
  if (errors[field] && !rows) return null;
  if (!rows) return null;
  if (errors[field]) {
    setState(section, "error", `Could not refresh ${humanize(field).toLowerCase()}: ${errors[field]}`, true);
  } else if (rows.length === 0) {
    setState(section, "empty", `No ${humanize(field).toLowerCase()} yet.`);
  } else {
    setState(section, "ready", "");
  }
  return section;
}

const ids = (list, values) => (values || []).map((v) => nameOf(list, v)).join(", ");
const lines = (items) => (items && items.length ? el("ul", { class: "plain" }, items.map((t) => el("li", {}, t))) : "");
const code = (text) => el("code", {}, text);

const COLUMNS = {
  actors: [
    ["Name", (r) => r.name],
    ["Type", (r) => humanize(r.actorType)],
    ["Role", (r) => r.role || ""],
    ["Timezone", (r) => r.timezone || ""],
    ["ID", (r) => code(r.id)],
  ],
  teams: [
    ["Name", (r) => r.name],
    ["Description", (r) => r.description || ""],
    ["Members", (r) => ids("actors", r.memberIds)],
    ["ID", (r) => code(r.id)],
  ],
  teamCheckins: [
    ["Date", (r) => el("time", { datetime: r.date }, r.date)],
    ["Team", (r) => nameOf("teams", r.teamId)],
    ["Actor", (r) => nameOf("actors", r.actorId)],
    ["Previously", (r) => lines(r.previously)],
    ["Next", (r) => lines(r.next)],
    ["Blockers", (r) => (r.blockers && r.blockers.length ? el("div", { class: "blocker-text" }, [lines(r.blockers)]) : "None")],
  ],
  goalStories: [
    ["Title", (r) => r.title],
    ["Parent", (r) => (r.parentId ? nameOf("goalStories", r.parentId) : "None")],
    ["Status", (r) => statusBadge(r.latestUpdate && r.latestUpdate.status)],
    ["Progress", (r) => progressBar(r.latestUpdate && r.latestUpdate.progressPercent)],
    ["Timeframe", (r) => (r.timeframe ? `${r.timeframe.start || "…"} to ${r.timeframe.end || "…"}` : "")],
    ["Teams", (r) => ids("teams", r.teamIds)],
    ["Actors", (r) => ids("actors", r.actorIds)],
  ],
  goalStoryUpdates: [
    ["Date", (r) => el("time", { datetime: r.date }, r.date)],
    ["Goal", (r) => nameOf("goalStories", r.goalStoryId)],
    ["Title", (r) => r.title],
    ["Status", (r) => statusBadge(r.status)],
    ["Progress", (r) => progressBar(r.progressPercent)],
    ["By", (r) => nameOf("actors", r.actorId)],
    ["Content", (r) => r.content],
  ],
  coordinationEvents: [
    ["Occurred", (r) => el("time", { datetime: r.occurredAt }, formatTime(r.occurredAt))],
    ["Type", (r) => humanize(r.eventType)],
    ["Actor", (r) => nameOf("actors", r.actorId)],
    ["Reference", (r) => code(r.referenceId)],
    ["Cursor", (r) => code(r.cursor)],
  ],
};

function renderEntityTables() {
  for (const field of Object.keys(COLUMNS)) {
    const rows = data[field];
    const section = sectionFor(field, rows);
    if (!section) continue;
    const content = section.querySelector(".content");
    content.replaceChildren();
    if (rows.length === 0) continue;
    content.append(renderTable(humanize(field), COLUMNS[field], rows, fresh));
  }
}

function renderGoalTree() {
  const section = document.getElementById("goals");
  const goals = data.goalStories;
  if (!goals) {
    if (errors.goalStories) setState(section, "error", `Could not load goals: ${errors.goalStories}`);
    return;
  }
  if (errors.goalStories) setState(section, "error", `Could not refresh goals: ${errors.goalStories}`, true);
  else if (goals.length === 0) setState(section, "empty", "No goal stories yet.");
  else setState(section, "ready", "");
  const known = new Set(goals.map((g) => g.id));
  const children = new Map();
  for (const goal of goals) {
    const parent = goal.parentId && known.has(goal.parentId) ? goal.parentId : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(goal);
  }
  const branch = (parent, depth) => {
    const kids = children.get(parent) || [];
    if (!kids.length) return null;
    return el("ul", { class: depth ? "tree" : "tree root" }, kids.map((goal) => {
      const update = goal.latestUpdate;
      const node = el("div", { class: "goal" + (fresh.has(update && update.id) ? " fresh" : ""), "data-goal-id": goal.id }, [
        el("div", { class: "goal-head" }, [
          el("h3", { class: "goal-title" }, goal.title),
          statusBadge(update && update.status),
        ]),
        progressBar(update && update.progressPercent),
        el("p", { class: "meta" }, update
          ? [`Latest update ${update.date}: `, el("q", {}, update.title)]
          : "No update yet."),
      ]);
      return el("li", {}, [node, branch(goal.id, depth + 1)]);
    }));
  };
  section.querySelector(".content").replaceChildren(branch(null, 0) || "");
}

function renderTeamSelect() {
  const select = document.getElementById("team-select");
  const teams = data.teams || [];
  if (!teams.length) {
    select.replaceChildren(el("option", {}, errors.teams ? "Teams could not be loaded" : "No teams yet"));
    select.disabled = true;
    return;
  }
  if (!selectedTeam || !teams.some((t) => t.id === selectedTeam)) selectedTeam = teams[0].id;
  select.replaceChildren(...teams.map((t) => el("option", { value: t.id }, t.name)));
  select.value = selectedTeam;
  select.disabled = false;
}

function renderCheckinsByDay() {
  const section = document.getElementById("checkins-by-day");
  renderTeamSelect();
  const content = section.querySelector(".content");
  if (!data.teamCheckins || !data.teams) {
    if (errors.teamCheckins || errors.teams) setState(section, "error", `Could not load check-ins: ${errors.teamCheckins || errors.teams}`);
    return;
  }
  const team = byId(data.teams).get(selectedTeam);
  const checkins = data.teamCheckins.filter((c) => c.teamId === selectedTeam);
  if (!team || !checkins.length) {
    setState(section, "empty", team ? `No check-ins from ${team.name} yet.` : "No teams yet.");
    content.replaceChildren();
    return;
  }
  if (errors.teamCheckins) setState(section, "error", `Could not refresh check-ins: ${errors.teamCheckins}`, true);
  else setState(section, "ready", "");
  const days = new Map();
  for (const c of checkins) {
    if (!days.has(c.date)) days.set(c.date, []);
    days.get(c.date).push(c);
  }
  const members = (team.memberIds || []).length;
  const dates = [...days.keys()].sort().reverse();
  content.replaceChildren(...dates.map((date) => {
    const list = days.get(date);
    const blocked = list.filter((c) => c.blockers && c.blockers.length).length;
    const summary = `${list.length}${members ? ` of ${members}` : ""} checked in` + (blocked ? `, ${blocked} blocked` : "");
    return el("article", { class: "day", "data-date": date }, [
      el("h3", {}, [el("time", { datetime: date }, formatDate(date)), el("span", { class: "summary" }, summary)]),
      el("ul", { class: "cards" }, list.map((c) => {
        const hasBlockers = c.blockers && c.blockers.length;
        return el("li", { class: "card" + (hasBlockers ? " blocked" : "") + (fresh.has(c.id) ? " fresh" : ""), "data-checkin-id": c.id }, [
          el("h4", {}, nameOf("actors", c.actorId)),
          c.previously && c.previously.length ? el("div", {}, [el("h5", {}, "Previously"), lines(c.previously)]) : "",
          c.next && c.next.length ? el("div", {}, [el("h5", {}, "Next"), lines(c.next)]) : "",
          hasBlockers ? el("div", { class: "blockers", role: "note" }, [el("h5", {}, "Blockers"), lines(c.blockers)]) : "",
        ]);
      })),
    ]);
  }));
}

function formatDate(date) {
  const d = new Date(`${date}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? date
    : d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
}

function formatTime(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// Several events in a burst cost one re-fetch per affected list.
const pending = new Set();
let flushTimer = null;
function refetchLater(fields) {
  fields.forEach((f) => pending.add(f));
  clearTimeout(flushTimer);
  flushTimer = setTimeout(async () => {
    const fields = [...pending];
    pending.clear();
    await Promise.all(fields.map(load));
    render();
  }, 150);
}

function showLiveState(state, text, transport) {
  const status = document.getElementById("live-status");
  status.dataset.state = state;
  if (transport) status.dataset.transport = transport;
  status.querySelector(".text").textContent = text;
}

async function latestCursor() {
  try {
    const result = await query(`{ coordinationEvents(first: 1, orderBy: [{ field: CURSOR, direction: DESC }]) { nodes { cursor } } }`);
    const [last] = result.coordinationEvents.nodes;
    return last ? last.cursor : null;
  } catch {
    return null;
  }
}

// Every section says why it shows nothing: the one reason, access.
function blockSections(problem) {
  const text = explain(problem);
  for (const id of ["goals", "checkins-by-day", ...Object.values(SECTION_OF)]) {
    const section = document.getElementById(id);
    setState(section, "error", text);
    section.querySelector(".state").dataset.access = problem.kind;
  }
  const select = document.getElementById("team-select");
  select.replaceChildren(el("option", {}, "Teams could not be loaded"));
}

async function main() {
  adoptTokenFromUrl();
  setUpAccessForm();
  const webhooks = new Webhooks({ actor: (id) => nameOf("actors", id), team: (id) => nameOf("teams", id) });
  const problem = await checkAccess();
  showAccess(problem);
  if (problem) {
    blockSections(problem);
    webhooks.blocked(problem);
    showLiveState("error", "No live updates: the server refused access.");
    document.body.dataset.loaded = "true";
    return;
  }
  document.getElementById("team-select").addEventListener("change", (event) => {
    selectedTeam = event.target.value;
    renderCheckinsByDay();
  });
  // The cursor comes first: whatever commits after it arrives as an event, so nothing falls between.
  const after = await latestCursor();
  const live = new LiveEvents({
    after,
    onState: showLiveState,
    // Why the live feed was refused (an expired token, most likely) is asked of the server over HTTP.
    onRefused: async () => {
      const refused = await checkAccess();
      if (!refused) return;
      showAccess(refused);
      showLiveState("error", `Live updates stopped: ${explain(refused)}`);
    },
    onEvent: (event) => {
      const fields = [...(AFFECTS[event.eventType] || Object.keys(SELECTIONS))];
      fresh.add(event.referenceId);
      fresh.add(event.id);
      setTimeout(() => { fresh.delete(event.referenceId); fresh.delete(event.id); render(); }, FRESH_MS);
      if (!byId(data.actors).has(event.actorId)) fields.push("actors", "teams");
      refetchLater(fields);
    },
  });
  // ?live=events reads the server-sent event feed even when the subscription exists.
  live.start(new URLSearchParams(location.search).get("live") || "subscription");
  await Promise.all([...Object.keys(SELECTIONS).map(load), webhooks.load()]);
  render();
  webhooks.render();
  document.body.dataset.loaded = "true";
}

main();
