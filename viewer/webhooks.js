// The webhooks section: every webhook and its latest delivery attempts (admin scope when access control
// is on), re-read every few seconds while it can be, since deliveries happen after the events they carry.

import { explain } from "./access.js";
import { accessProblem, query } from "./graphql.js";
import { el, humanize, renderTable, setState } from "./render.js";

const DELIVERIES = 20;
const REFRESH_MS = 5000;
const EXCERPT = 160;
const WEBHOOKS = `{
  webhooks {
    id url description enabled disabledReason eventTypes teamIds actorIds format cursor deliveredCount failedCount
    deliveries(first: ${DELIVERIES}) { id eventId eventCursor attempt delivered status latencyMs error attemptedAt }
  }
}`;

const code = (text) => el("code", {}, text);
const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const listed = (values, nameOf, none) => (values && values.length ? values.map(nameOf).join(", ") : none);

function excerpt(text) {
  if (!text) return "";
  return text.length <= EXCERPT ? text : el("span", { title: text }, `${text.slice(0, EXCERPT - 1)}…`);
}

function formatTime(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime())
    ? value
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const DELIVERY_COLUMNS = [
  ["Attempted", (d) => el("time", { datetime: d.attemptedAt }, formatTime(d.attemptedAt))],
  ["Event", (d) => [code(d.eventId), el("span", { class: "cursor" }, ` cursor ${d.eventCursor}`)]],
  ["Attempt", (d) => String(d.attempt)],
  [
    "Status",
    (d) =>
      el(
        "span",
        { class: `badge ${d.delivered ? "on-track" : "off-track"}` },
        `${d.delivered ? "Delivered" : "Failed"}${d.status === null ? " (no answer)" : ` ${d.status}`}`,
      ),
  ],
  ["Latency", (d) => `${Math.round(d.latencyMs)} ms`],
  ["Error", (d) => excerpt(d.error)],
];

export class Webhooks {
  // `names`: { actor(id), team(id) } for the filters' ids.
  constructor(names) {
    this.section = document.getElementById("webhooks");
    this.names = names;
    this.hooks = null;
    this.timer = null;
    document.getElementById("webhooks-refresh").addEventListener("click", () => this.load());
  }

  async load() {
    clearTimeout(this.timer);
    try {
      this.hooks = (await query(WEBHOOKS)).webhooks;
      this.render();
    } catch (error) {
      const problem = accessProblem(error);
      // A refusal of the token does not pass by itself: the reader enters another one.
      if (problem) return this.blocked(problem);
      this.failed(error);
    }
    this.schedule();
  }

  schedule() {
    this.timer = setTimeout(() => (document.hidden ? this.schedule() : this.load()), REFRESH_MS);
  }

  // The token cannot read webhooks: say why, and stop asking.
  blocked(problem) {
    clearTimeout(this.timer);
    this.hooks = null;
    this.section.querySelector(".state").dataset.access = problem.kind;
    const text =
      problem.kind === "scope"
        ? `Webhooks need an admin token: this token does not grant the ${problem.scope} scope.`
        : `Webhooks need an admin token. ${explain(problem, "admin")}`;
    setState(this.section, "error", text);
  }

  failed(error) {
    delete this.section.querySelector(".state").dataset.access;
    const verb = this.hooks ? "refresh" : "load";
    const unavailable = error.code === "SERVICE_UNAVAILABLE" ? "not available: " : "";
    setState(this.section, "error", `Could not ${verb} webhooks: ${unavailable}${error.message}`, Boolean(this.hooks));
  }

  render() {
    if (!this.hooks) return;
    const line = this.section.querySelector(".state");
    delete line.dataset.access;
    const content = this.section.querySelector(".content");
    if (!this.hooks.length) {
      setState(this.section, "empty", "No webhooks yet.");
      content.replaceChildren();
      return;
    }
    setState(this.section, "ready", "");
    const { actor, team } = this.names;
    content.replaceChildren(
      ...this.hooks.map((hook) =>
        el("article", { class: "webhook", "data-webhook-id": hook.id }, [
          el("div", { class: "goal-head" }, [
            el("h3", { class: "webhook-url" }, code(hook.url)),
            el("span", { class: `badge ${hook.enabled ? "on-track" : "paused"}` }, hook.enabled ? "Enabled" : "Disabled"),
          ]),
          hook.description ? el("p", { class: "meta" }, hook.description) : "",
          hook.disabledReason ? el("p", { class: "blocker-text", role: "note" }, `Disabled: ${hook.disabledReason}`) : "",
          el("dl", { class: "facts" }, [
            el("dt", {}, "Events"),
            el("dd", {}, listed(hook.eventTypes, humanize, "Every type")),
            el("dt", {}, "Teams"),
            el("dd", {}, listed(hook.teamIds, team, "Any team")),
            el("dt", {}, "Actors"),
            el("dd", {}, listed(hook.actorIds, actor, "Any actor")),
            el("dt", {}, "Format"),
            el("dd", {}, humanize(hook.format)),
            el("dt", {}, "Delivered"),
            el("dd", {}, `${count(hook.deliveredCount, "event")}, ${count(hook.failedCount, "failed attempt")}; cursor ${hook.cursor}`),
          ]),
          hook.deliveries.length
            ? renderTable(`Latest deliveries to ${hook.url}`, DELIVERY_COLUMNS, hook.deliveries, new Set())
            : el("p", { class: "meta" }, "No delivery attempts yet."),
        ]),
      ),
    );
  }
}
