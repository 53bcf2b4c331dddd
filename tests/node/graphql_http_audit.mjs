// Runs the GraphQL-over-HTTP specification's audit (graphql-http's serverAudits) against one URL and
// prints every result as one JSON array on stdout. The Python test decides what passes.
// Usage: node graphql_http_audit.mjs <url>; COCO_AUDIT_TOKEN, when set, goes on every request as a bearer token.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql_http_audit.mjs <url>');
  process.exit(2);
}
const token = process.env.COCO_AUDIT_TOKEN;

function fetchFn(input, init = {}) {
  if (!token) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await Promise.all(serverAudits({ url, fetchFn }).map(({ fn }) => fn()));
const report = [];
for (const { id, name, status, reason, response } of results) {
  const entry = { id, name, status };
  if (status !== 'ok') {
    entry.reason = reason;
    if (response) {
      entry.httpStatus = response.status;
      entry.contentType = response.headers.get('content-type');
      // The audit may have read the body already.
      entry.body = response.bodyUsed ? null : await response.text().catch(() => null);
    }
  }
  report.push(entry);
}
process.stdout.write(JSON.stringify(report));
