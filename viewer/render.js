// Small DOM helpers shared by the views.

export function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// "goalStoryUpdates" -> "Goal story updates", "ON_TRACK" -> "On track".
export function humanize(name) {
  const words = String(name).replace(/_/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function statusBadge(status) {
  if (!status) return el("span", { class: "badge none" }, "No status");
  return el("span", { class: `badge ${status.toLowerCase().replace(/_/g, "-")}` }, humanize(status));
}

export function progressBar(percent) {
  if (percent === null || percent === undefined) return el("span", { class: "progress none" }, "No progress reported");
  return el("span", { class: "progress" }, [
    el("progress", { max: "100", value: String(percent), "aria-label": `${percent}% complete` }),
    el("span", { class: "percent" }, `${percent}%`),
  ]);
}

// A section's state line: loading, empty, error (role=alert) or ready (hidden). `keep` leaves
// the content visible under an error, for a refresh that failed after a good load.
export function setState(section, state, text, keep = false) {
  const line = section.querySelector(".state");
  line.dataset.state = state;
  line.textContent = text;
  if (state === "error") line.setAttribute("role", "alert");
  else line.removeAttribute("role");
  section.setAttribute("aria-busy", state === "loading" ? "true" : "false");
  if (state === "error" && !keep) section.querySelector(".content").replaceChildren();
}

export function renderTable(caption, columns, rows, fresh) {
  const head = el("thead", {}, el("tr", {}, columns.map(([label]) => el("th", { scope: "col" }, label))));
  const body = el("tbody", {}, rows.map((row) => el("tr", { class: fresh.has(row.id) ? "fresh" : null, "data-id": row.id },
    columns.map(([label, value]) => el("td", { "data-label": label }, value(row))))));
  const table = el("table", {}, [el("caption", {}, `${caption} (${rows.length})`), head, body]);
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${caption} table` }, table);
}
