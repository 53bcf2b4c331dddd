// The GraphiQL page of /graphql (api/graphql/ide.py): queries and mutations over HTTP, subscriptions over
// WebSocket (graphql-transport-ws). The access token of the field above the IDE (kept in this tab's
// sessionStorage, as the viewer keeps it) goes with both, as `Authorization: Bearer` on every HTTP request
// and in the socket's connection_init payload; an Authorization entry in the headers editor wins over it.
// The line beside the field says what the server made of the token: missing, expired, short of a scope.
(function () {
  "use strict";

  var TOKEN_KEY = "coco.token";
  var root = document.getElementById("graphiql");
  var url = new URL(root.getAttribute("data-endpoint"), window.location.href);
  var socketUrl = new URL(url.href);
  socketUrl.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  var status = document.getElementById("coco-access-status");
  var input = document.getElementById("coco-token");
  var forget = document.getElementById("coco-token-forget");

  function token() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (error) {
      return "";
    }
  }

  function setToken(value) {
    var text = String(value || "")
      .trim()
      .replace(/^bearer\s+/i, "");
    try {
      if (text) {
        window.sessionStorage.setItem(TOKEN_KEY, text);
      } else {
        window.sessionStorage.removeItem(TOKEN_KEY);
      }
    } catch (error) {
      // no storage: the token cannot be kept
    }
  }

  // A link may carry ?token=: kept for the tab, taken out of the address bar and history.
  (function adoptTokenFromUrl() {
    var here = new URL(window.location.href);
    if (!here.searchParams.has("token")) {
      return;
    }
    setToken(here.searchParams.get("token"));
    here.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", here.href);
  })();

  function hasAuthorization(headers) {
    return Object.keys(headers || {}).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
  }

  // What the server's error codes say about the token; null when nothing about it.
  function problemOf(error) {
    var extensions = (error && error.extensions) || {};
    if (extensions.pgrst === "PGRST302" || (extensions.code === "UNAUTHENTICATED" && extensions.scope)) {
      return { kind: "missing", text: "No access token: this server needs one. Enter it above." };
    }
    if (extensions.pgrst === "PGRST303") {
      return { kind: "expired", text: "The access token has expired. Enter a new one above." };
    }
    if (extensions.code === "UNAUTHENTICATED") {
      return { kind: "invalid", text: "The server did not accept the access token (" + error.message + "). Enter another above." };
    }
    if (extensions.code === "FORBIDDEN" && extensions.scope) {
      return {
        kind: "scope",
        text: "The access token does not grant the " + extensions.scope + " scope, which this operation needs.",
      };
    }
    return null;
  }

  function showAccess(problem) {
    var entered = Boolean(token());
    forget.hidden = !entered;
    input.placeholder = entered ? "A token is in use; paste another" : "Paste a token";
    status.setAttribute("data-problem", problem ? problem.kind : "none");
    status.textContent = problem ? problem.text : entered ? "Using the access token entered in this tab." : "";
  }

  function noteAnswer(body) {
    var errors = (body && body.errors) || [];
    for (var i = 0; i < errors.length; i += 1) {
      var problem = problemOf(errors[i]);
      if (problem) {
        showAccess(problem);
        return;
      }
    }
    if (body && body.data) {
      showAccess(null);
    }
  }

  // Every HTTP request of the IDE (the schema's too): the token added, the answer looked at.
  function fetchWithToken(resource, init) {
    var options = Object.assign({}, init);
    var headers = Object.assign({}, options.headers);
    if (token() && !hasAuthorization(headers)) {
      headers.Authorization = "Bearer " + token();
    }
    options.headers = headers;
    return window.fetch(resource, options).then(function (response) {
      if ((response.headers.get("content-type") || "").indexOf("application/json") === 0) {
        response
          .clone()
          .json()
          .then(noteAnswer, function () {});
      }
      return response;
    });
  }

  var overHttp = GraphiQL.createFetcher({ url: url.href, fetch: fetchWithToken });
  // One socket per set of headers: new headers (a token entered) open a new connection.
  var sockets = {};

  function socketFor(headers) {
    var params = Object.assign({}, headers);
    if (token() && !hasAuthorization(params)) {
      params.Authorization = "Bearer " + token();
    }
    var key = JSON.stringify(params);
    if (!sockets[key]) {
      sockets[key] = graphqlWs.createClient({
        url: socketUrl.href,
        connectionParams: params,
        lazy: true,
        // The same token gets the same refusal (4403): say so at once rather than after five retries.
        shouldRetry: function (event) {
          return !(event && event.code === 4403);
        },
        on: {
          closed: function (event) {
            // The server refused the connection_init (4403) with a reason; the HTTP answer to the same
            // token names the problem by its codes.
            if (event && event.code === 4403) {
              fetchWithToken(url.href, {
                method: "POST",
                headers: Object.assign({ "content-type": "application/json" }, headers),
                body: JSON.stringify({ query: "{ __typename }" }),
              }).catch(function () {});
            }
          },
        },
      });
    }
    return sockets[key];
  }

  document.getElementById("coco-access").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.value.trim()) {
      input.focus();
      return;
    }
    setToken(input.value);
    // Afresh with the new token: the schema, the explorer and any socket.
    window.location.reload();
  });
  forget.addEventListener("click", function () {
    setToken("");
    window.location.reload();
  });
  showAccess(null);

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
    "# With access control on, enter your token in the Access token field above;",
    '# or in Headers (below) as {"Authorization": "Bearer <your token>"}.',
    "# Subscriptions run over WebSocket with the same token.",
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
      // A token typed into the headers editor is not kept at all (the field above keeps one for the tab).
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
