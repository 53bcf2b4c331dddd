// Apollo Client against a running server (tests/graphql_api/test_clients.py): automatic persisted queries
// by GET and by POST, the normalized cache, a subscription. Prints a report as JSON; the test judges it.
// Usage: node apollo_client.mjs <graphql url> [token]
import { gql } from '@apollo/client';
import { createApolloClient } from './clients/apollo.mjs';

const [url, token] = process.argv.slice(2);
const requests = [];

// Every request the clients send, as the server sees it: method, whether the document went along, its hash.
function recording(label) {
  return async (input, init = {}) => {
    const target = new URL(typeof input === 'string' ? input : input.url);
    const body = init.body ? JSON.parse(init.body) : null;
    const extensions = body ? body.extensions : JSON.parse(target.searchParams.get('extensions') ?? 'null');
    const response = await fetch(input, init);
    requests.push({
      client: label,
      method: init.method ?? 'GET',
      withDocument: Boolean(body?.query ?? target.searchParams.get('query')),
      hash: extensions?.persistedQuery?.sha256Hash ?? null,
      status: response.status,
      cacheControl: response.headers.get('cache-control'),
      code: response.ok || response.status === 400 ? await codeOf(response.clone()) : null,
    });
    return response;
  };
}

async function codeOf(response) {
  const body = await response.json().catch(() => null);
  return body?.errors?.[0]?.extensions?.code ?? null;
}

// A new document every run (its hash unknown to the server), nested as a goal tree page is.
const name = `GoalTree${process.pid}${Date.now()}`;
const GOAL_TREE = gql(`
  query ${name}($id: ID!) {
    goalStory(id: $id) {
      id nodeId title
      latestUpdate { id status progressPercent actor { id name } }
      children { nodes { id title teams { id name } latestUpdate { id status } } }
    }
  }
`);

const report = { requests };

// 1. By GET: unknown hash, then the document by POST (registered), then the cache answers a second read.
const first = createApolloClient({ url, token, fetch: recording('first') });
report.first = (await first.query({ query: GOAL_TREE, variables: { id: 'g-1' } })).data;
const sentBefore = requests.length;
report.again = (await first.query({ query: GOAL_TREE, variables: { id: 'g-1' } })).data;
report.againFromCache = requests.length === sentBefore;
report.cached = Object.keys(first.cache.extract()).sort();

// 2. Another client (an empty cache), by GET: the hash alone is enough now.
const second = createApolloClient({ url, token, fetch: recording('second') });
report.second = (await second.query({ query: GOAL_TREE, variables: { id: 'g-1' } })).data;

// 3. By POST: the hash alone too.
const third = createApolloClient({ url, token, fetch: recording('third'), hashedByGet: false });
report.third = (await third.query({ query: GOAL_TREE, variables: { id: 'g-1' } })).data;

// 4. A subscription over WebSocket: the latest event replayed, then the one a mutation leaves, live.
const latest = await third.query({
  query: gql`query LatestEvent { coordinationEvents(last: 1) { nodes { cursor } } }`,
  fetchPolicy: 'network-only',
});
const [{ cursor }] = latest.data.coordinationEvents.nodes;
report.events = await new Promise((resolve, reject) => {
  const seen = [];
  let written = null;
  const subscription = third
    .subscribe({
      query: gql`subscription Events($after: String) { coordinationEvents(after: $after) { cursor eventType referenceId } }`,
      variables: { after: String(BigInt(cursor) - 1n) },
    })
    .subscribe({
      next: async ({ data, error }) => {
        if (error) return reject(error);
        seen.push(data.coordinationEvents);
        if (seen.length === 1) {
          // Replayed: the subscription is live from here on.
          const created = await third.mutate({
            mutation: gql`mutation Checkin($input: CreateTeamCheckinInput!) { createTeamCheckin(input: $input) { teamCheckin { id } } }`,
            variables: { input: { actorId: 'a-1', teamId: 't-1', date: '2026-05-23', blockers: ['none'] } },
          });
          written = created.data.createTeamCheckin.teamCheckin.id;
        }
        if (written && seen.some((event) => event.referenceId === written)) {
          subscription.unsubscribe();
          resolve({ seen, written });
        }
      },
      error: reject,
    });
});

console.log(JSON.stringify(report));
process.exit(0);
