// The GraphiQL page of /graphql (api/graphql/ide.py): queries and mutations over HTTP, subscriptions over
// WebSocket (graphql-transport-ws). The headers editor's headers go with both: on every HTTP request, and
// as the socket's connection_init payload, where the server reads an `Authorization` entry too.
(function () {
  "use strict";

  var root = document.getElementById("graphiql");
  var url = new URL(root.getAttribute("data-endpoint"), window.location.href);
  var socketUrl = new URL(url.href);
  socketUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";

  var overHttp = GraphiQL.createFetcher({ url: url.href });
  // One socket per set of headers: new headers (a token entered) open a new connection.
  var sockets = {};

  function socketFor(headers) {
    var params = headers || {};
    var key = JSON.stringify(params);
    if (!sockets[key]) {
      sockets[key] = graphqlWs.createClient({ url: socketUrl.href, connectionParams: params, lazy: true });
    }
    return sockets[key];
  }

  function isSubscription(documentAST, operationName) {
    var operations = documentAST.definitions.filter(function (definition) {
      return definition.kind === "OperationDefinition";
    });
    var chosen = operationName
      ? operations.filter(function (operation) {
          return operation.name && operation.name.value === operationName;
        })[0]
      : operations.length === 1
        ? operations[0]
        : undefined;
    return Boolean(chosen) && chosen.operation === "subscription";
  }

  function closed(event) {
    if (event instanceof Error) {
      return event;
    }
    var code = event && event.code ? " (" + event.code + (event.reason ? ": " + event.reason : "") + ")" : "";
    return new Error("the subscription's WebSocket closed" + code);
  }

  function fetcher(params, options) {
    if (!options || !options.documentAST || !isSubscription(options.documentAST, params.operationName)) {
      return overHttp(params, options);
    }
    var socket = socketFor(options.headers);
    // An observable: GraphiQL shows each event as it comes, and unsubscribes when the run is stopped.
    return {
      subscribe: function (observer) {
        var dispose = socket.subscribe(params, {
          next: function (value) {
            observer.next(value);
          },
          error: function (event) {
            observer.error(closed(event));
          },
          complete: function () {
            observer.complete();
          },
        });
        return { unsubscribe: dispose };
      },
    };
  }

  var defaultQuery = [
    "# CoCo's GraphQL API. Run with Ctrl-Enter; the explorer (left) builds queries by clicking.",
    "# With access control on, open Headers (below) and enter:",
    '#   {"Authorization": "Bearer <your token>"}',
    "# Subscriptions run over WebSocket with the same headers.",
    "",
    "query GoalStories {",
    "  goalStories(first: 5, where: { parentId: { isNull: true } }) {",
    "    totalCount",
    "    nodes { id title latestUpdate { status progressPercent date } }",
    "  }",
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // A token typed into the headers editor stays in this tab, never in the browser's storage.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
