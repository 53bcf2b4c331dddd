// urql against a running server (tests/graphql_api/test_clients.py): a query over HTTP, a subscription
// over graphql-ws that sees the event a mutation leaves. Prints a report as JSON; the test judges it.
// Usage: node urql_client.mjs <graphql url> [token]
import { gql } from '@urql/core';
import { createUrqlClient } from './clients/urql.mjs';

const [url, token] = process.argv.slice(2);
const client = createUrqlClient({ url, token });
const report = {};

const stories = await client
  .query(gql`query Roots { goalStories(where: { parentId: { isNull: true } }, orderBy: [{ field: ID }]) {
    nodes { id title latestUpdate { status } } } }`, {})
  .toPromise();
if (stories.error) throw stories.error;
report.roots = stories.data.goalStories.nodes;

const latest = await client.query(gql`{ coordinationEvents(last: 1) { nodes { cursor } } }`, {}).toPromise();
const [{ cursor }] = latest.data.coordinationEvents.nodes;

report.events = await new Promise((resolve, reject) => {
  const seen = [];
  let written = null;
  const { unsubscribe } = client
    .subscription(
      gql`subscription Events($after: String) { coordinationEvents(after: $after) { cursor eventType referenceId } }`,
      { after: String(BigInt(cursor) - 1n) },
    )
    .subscribe(async (result) => {
      if (result.error) return reject(result.error);
      seen.push(result.data.coordinationEvents);
      if (seen.length === 1) {
        const created = await client
          .mutation(
            gql`mutation Update($input: CreateGoalStoryUpdateInput!) { createGoalStoryUpdate(input: $input) { goalStoryUpdate { id } } }`,
            { input: { actorId: 'a-2', goalStoryId: 'g-4', date: '2026-05-23', title: 'urql', content: 'live', status: 'ON_TRACK' } },
          )
          .toPromise();
        if (created.error) return reject(created.error);
        written = created.data.createGoalStoryUpdate.goalStoryUpdate.id;
      }
      if (written && seen.some((event) => event.referenceId === written)) {
        unsubscribe();
        resolve({ seen, written });
      }
    });
});

console.log(JSON.stringify(report));
process.exit(0);
