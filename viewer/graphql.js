// Queries over HTTP POST to the GraphQL endpoint; errors become exceptions with the server's message.

export const ENDPOINT = new URL("../graphql", import.meta.url);

export class GraphQLError extends Error {}

export async function query(text, variables = {}) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query: text, variables }),
    });
  } catch (error) {
    throw new GraphQLError(`the server could not be reached (${error.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLError(`the server answered ${response.status} without JSON`);
  }
  if (body.errors && body.errors.length) {
    throw new GraphQLError(body.errors.map((e) => e.message).join("; "));
  }
  if (!response.ok) throw new GraphQLError(`the server answered ${response.status}`);
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
