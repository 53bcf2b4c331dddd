// The access token of this tab: the field that sets it, and the line that says what the server made of it.

import { accessProblem, query, setToken, token } from "./graphql.js";

// What to tell the reader, by what the server's error codes say (graphql.js: accessProblem).
export function explain(problem, need = null) {
  const wanted = need || problem.scope;
  switch (problem.kind) {
    case "missing":
      return `No access token: this server needs one${wanted && wanted !== "read" ? ` with the ${wanted} scope` : ""}. Enter it above.`;
    case "expired":
      return "The access token has expired. Enter a new one above.";
    case "scope":
      return `The access token does not grant the ${problem.scope} scope, which ${problem.scope === "read" ? "reading anything" : "this"} needs. Enter a token with the ${problem.scope} scope above.`;
    default:
      return `The server did not accept the access token (${problem.message}). Enter another above.`;
  }
}

// The problem with the tab's access, asked of the server with the cheapest query; null when reading is
// allowed, or when the server could not be reached (each section then says so).
export async function checkAccess() {
  try {
    await query("{ __typename }");
    return null;
  } catch (error) {
    return accessProblem(error);
  }
}

export function showAccess(problem) {
  const status = document.getElementById("access-status");
  const forget = document.getElementById("token-forget");
  const entered = Boolean(token());
  forget.hidden = !entered;
  document.getElementById("token-input").placeholder = entered ? "A token is in use; paste another" : "Paste a token";
  status.dataset.problem = problem ? problem.kind : "none";
  if (problem) {
    status.setAttribute("role", "alert");
    status.textContent = explain(problem);
  } else {
    status.removeAttribute("role");
    status.textContent = entered ? "Using the access token entered in this tab." : "";
  }
  status.hidden = !status.textContent;
}

// A new token (or none) takes effect on a fresh load: every section and the live feed start over with it.
export function setUpAccessForm() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      input.focus();
      return;
    }
    setToken(input.value);
    input.value = "";
    location.reload();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    setToken("");
    location.reload();
  });
}
