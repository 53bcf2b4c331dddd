// Apollo Client (4.x) for CoCo: queries and mutations over HTTP with automatic persisted queries (hashed
// queries by GET, so that caches can keep them), subscriptions over WebSocket (graphql-transport-ws), the
// access token on both, and a normalized cache (every type has an id; `nodeId` is global).
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // in a browser, leave webSocketImpl out: it has its own WebSocket

export function createApolloClient({ url, token, fetch = globalThis.fetch, hashedByGet = true }) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const http = new PersistedQueryLink({
    sha256: (document) => createHash('sha256').update(document).digest('hex'),
    useGETForHashedQueries: hashedByGet,
  }).concat(new HttpLink({ uri: url, headers, fetch }));
  const socket = new GraphQLWsLink(
    createClient({
      url: url.replace(/^http/, 'ws'),
      // The server reads the token from connection_init (a browser cannot set headers on a WebSocket).
      connectionParams: () => headers,
      webSocketImpl: WebSocket,
    }),
  );
  return new ApolloClient({
    link: ApolloLink.split(({ operationType }) => operationType === 'subscription', socket, http),
    cache: new InMemoryCache(),
  });
}
