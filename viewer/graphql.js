// Queries over HTTP POST to the GraphQL endpoint, with the access token of this tab; errors become
// exceptions with the server's message and what its codes say.

export const ENDPOINT = new URL("../graphql", import.meta.url);

// The token lives in this tab's sessionStorage only: gone when the tab closes, never in a URL it keeps.
const TOKEN_KEY = "coco.token"; // GraphiQL (/graphql) shares it
const TOKEN_PARAMETER = "token";

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: the page still works without access control
  }
}

export function setToken(value) {
  const text = String(value || "").trim().replace(/^bearer\s+/i, "");
  try {
    if (text) sessionStorage.setItem(TOKEN_KEY, text);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing to keep it in
  }
  return text;
}

// A link may carry ?token=: the token is kept for the tab and taken out of the address bar and
// history, so that it is neither bookmarked, shared nor sent on as a Referer.
export function adoptTokenFromUrl(location = window.location) {
  const url = new URL(location.href);
  if (!url.searchParams.has(TOKEN_PARAMETER)) return false;
  setToken(url.searchParams.get(TOKEN_PARAMETER));
  url.searchParams.delete(TOKEN_PARAMETER);
  history.replaceState(history.state, "", url);
  return true;
}

export function authorization() {
  const value = token();
  return value ? `Bearer ${value}` : null;
}

export class GraphQLError extends Error {
  // status: the HTTP status; code: extensions.code; pgrst: the PostgREST code of a refused token;
  // scope: the scope that was missing.
  constructor(message, { status = null, code = null, pgrst = null, scope = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.pgrst = pgrst;
    this.scope = scope;
  }
}

// What an error says about access: null when it is not about access, otherwise
// { kind: "missing" | "expired" | "invalid" | "scope", scope, message }.
export function accessProblem(error) {
  if (!(error instanceof GraphQLError)) return null;
  const { code, pgrst, scope, message } = error;
  if (pgrst === "PGRST302" || (code === "UNAUTHENTICATED" && scope)) return { kind: "missing", scope, message };
  if (pgrst === "PGRST303") return { kind: "expired", scope: null, message };
  if (code === "UNAUTHENTICATED") return { kind: "invalid", scope: null, message };
  if (code === "FORBIDDEN" && scope) return { kind: "scope", scope, message };
  return null;
}

export async function query(text, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const credential = authorization();
  if (credential) headers.Authorization = credential;
  let response;
  try {
    response = await fetch(ENDPOINT, { method: "POST", headers, body: JSON.stringify({ query: text, variables }) });
  } catch (error) {
    throw new GraphQLError(`the server could not be reached (${error.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError(`the server answered ${response.status} without JSON`, { status: response.status });
  }
  if (body.errors && body.errors.length) {
    const extensions = body.errors[0].extensions || {};
    throw new GraphQLError(body.errors.map((e) => e.message).join("; "), {
      status: response.status,
      code: extensions.code || null,
      pgrst: extensions.pgrst || null,
      scope: extensions.scope || null,
    });
  }
  if (!response.ok) throw new GraphQLError(`the server answered ${response.status}`, { status: response.status });
  return body.data;
}

// Every row of a top-level connection, following pages (the server caps a page's size).
export async function all(field, selection, { orderBy = null, where = null, pageSize = 100 } = {}) {
  const text = `query Page($first: Int!, $after: String, $orderBy: [${orderType(field)}!], $where: ${whereType(field)}) {
    ${field}(first: $first, after: $after, orderBy: $orderBy, where: $where) {
      nodes { ${selection} }
      pageInfo { hasNextPage endCursor }
    }
  }`;
  const rows = [];
  let after = null;
  for (;;) {
    const data = await query(text, { first: pageSize, after, orderBy, where });
    const page = data[field];
    rows.push(...page.nodes);
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return rows;
    after = page.pageInfo.endCursor;
  }
}

const TYPES = {
  actors: "Actor",
  teams: "Team",
  teamCheckins: "TeamCheckin",
  goalStories: "GoalStory",
  goalStoryUpdates: "GoalStoryUpdate",
  coordinationEvents: "CoordinationEvent",
};

function orderType(field) {
  return `${TYPES[field]}OrderBy`;
}

function whereType(field) {
  return `${TYPES[field]}Where`;
}
