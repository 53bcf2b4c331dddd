// Live coordination events: the GraphQL `coordinationEvents` subscription over WebSocket
// (graphql-transport-ws), or the server-sent event feed when the server has no subscription.
// Either way every event reaches `onEvent({ id, cursor, eventType, actorId, referenceId, occurredAt })`
// once, in commit order, and a dropped connection resumes after the last cursor seen. The tab's access
// token goes in the socket's connection_init payload, or as ?token= on the event stream (EventSource
// sends no headers); a refused token stops the reconnecting and is reported to `onRefused`.

import { authorization, ENDPOINT, query, token } from "./graphql.js";

const SUBSCRIPTION = `subscription Live($after: String) {
  coordinationEvents(after: $after) { id cursor eventType actorId referenceId occurredAt }
}`;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;
const ACK_TIMEOUT_MS = 10000;
// graphql-transport-ws: the server refused the connection_init (here: the token).
const FORBIDDEN = 4403;

export class LiveEvents {
  constructor({ after = null, onEvent, onState, onRefused = () => {} }) {
    this.cursor = after;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onRefused = onRefused;
    this.stopped = false;
    this.transport = null;
  }

  // `prefer`: "subscription" (the default: when the schema has it) or "events" (always the event stream).
  async start(prefer = "subscription") {
    this.onState("connecting", "Connecting to live updates…");
    const subscriptions = prefer !== "events" && await hasSubscription();
    this.transport = subscriptions ? new WebSocketTransport(this) : new EventStreamTransport(this);
    this.onState("connecting", `Connecting to live updates (${this.transport.name})…`, this.transport.kind);
    this.transport.open();
  }

  stop() {
    this.stopped = true;
    if (this.transport) this.transport.close();
  }

  deliver(event) {
    this.cursor = event.cursor;
    this.onEvent(event);
  }
}

async function hasSubscription() {
  try {
    const data = await query("{ __schema { subscriptionType { fields { name } } } }");
    const type = data.__schema.subscriptionType;
    return Boolean(type && type.fields.some((f) => f.name === "coordinationEvents"));
  } catch {
    return false; // introspection may be off: the event stream is there either way
  }
}

class WebSocketTransport {
  constructor(live) {
    this.live = live;
    this.retries = 0;
    this.socket = null;
    this.timer = null;
    this.name = "GraphQL subscription";
    this.kind = "subscription";
  }

  url() {
    const url = new URL(ENDPOINT);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url;
  }

  open() {
    const live = this.live;
    const socket = new WebSocket(this.url(), "graphql-transport-ws");
    this.socket = socket;
    let acknowledged = false;
    const ackTimer = setTimeout(() => socket.close(4408, "Connection initialisation timeout"), ACK_TIMEOUT_MS);

    socket.addEventListener("open", () => {
      const credential = authorization();
      const payload = credential ? { Authorization: credential } : {};
      socket.send(JSON.stringify({ type: "connection_init", payload }));
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        socket.close(4400, "Invalid message");
        return;
      }
      switch (frame.type) {
        case "connection_ack":
          acknowledged = true;
          clearTimeout(ackTimer);
          this.retries = 0;
          socket.send(JSON.stringify({
            id: "events", type: "subscribe",
            payload: { query: SUBSCRIPTION, variables: { after: live.cursor } },
          }));
          live.onState("live", `Live: updates arrive as they happen (${this.name})`);
          break;
        case "ping":
          socket.send(JSON.stringify({ type: "pong" }));
          break;
        case "next": {
          const payload = frame.payload || {};
          if (payload.errors && payload.errors.length) {
            live.onState("error", `Live updates failed: ${payload.errors[0].message}`);
            break;
          }
          const event = payload.data && payload.data.coordinationEvents;
          if (event) live.deliver(event);
          break;
        }
        case "error":
          live.onState("error", `Live updates failed: ${(frame.payload && frame.payload[0] && frame.payload[0].message) || "error"}`);
          socket.close(1000, "subscription error");
          break;
        case "complete":
          socket.close(1000, "complete"); // the server ended the stream: reconnect and resume
          break;
        default:
          break;
      }
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(ackTimer);
      if (live.stopped || this.socket !== socket) return;
      if (event.code === FORBIDDEN) {
        // Retrying the same token gets the same answer: stop, and say why.
        live.onState("error", `Live updates refused: ${event.reason || "the token was not accepted"}`);
        live.onRefused(event.reason);
        return;
      }
      this.scheduleReconnect(acknowledged);
    });
  }

  scheduleReconnect() {
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.retries);
    this.retries += 1;
    this.live.onState("reconnecting", `Live updates interrupted; reconnecting in ${Math.round(delay / 1000) || 1} s…`);
    this.timer = setTimeout(() => this.open(), delay);
  }

  close() {
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ id: "events", type: "complete" }));
      socket.close(1000, "bye");
    }
  }
}

// The browser's EventSource reconnects by itself and resumes with Last-Event-ID.
class EventStreamTransport {
  constructor(live) {
    this.live = live;
    this.source = null;
    this.name = "event stream";
    this.kind = "events";
  }

  open() {
    const live = this.live;
    const url = new URL("../coordination_events", import.meta.url);
    if (live.cursor) url.searchParams.set("after", live.cursor);
    if (token()) url.searchParams.set("token", token());
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      live.onState("live", `Live: updates arrive as they happen (${this.name})`);
    });
    source.addEventListener("coordination_event", (message) => {
      const doc = JSON.parse(message.data);
      live.deliver({
        id: doc.id,
        cursor: message.lastEventId,
        eventType: String(doc.event_type).toUpperCase(),
        actorId: doc.actor_id,
        referenceId: doc.reference_id,
        occurredAt: doc.occurred_at,
      });
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // EventSource gives up on an answer other than the stream (a 401 or 403 among them).
        live.onState("error", "Live updates stopped; reload the page to resume.");
        live.onRefused(null);
      } else {
        live.onState("reconnecting", "Live updates interrupted; reconnecting…");
      }
    });
  }

  close() {
    if (this.source) this.source.close();
  }
}
