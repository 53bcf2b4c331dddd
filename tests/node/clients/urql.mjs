// urql (@urql/core 6) for CoCo: queries over HTTP, subscriptions through graphql-ws
// (graphql-transport-ws), the access token on both.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // in a browser, leave webSocketImpl out

export function createUrqlClient({ url, token }) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const socket = createClient({ url: url.replace(/^http/, 'ws'), connectionParams: () => headers, webSocketImpl: WebSocket });
  return new Client({
    url,
    fetchOptions: () => ({ headers }),
    preferGetMethod: false,
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  });
}
