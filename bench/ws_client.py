"""GraphQL subscriptions over WebSocket as a load generator: many connections in one process.

`python -m bench.ws_client HOST PORT STREAMS WANTED [TIMEOUT]`, the same contract as
bench/sse_client.py: one connection per subscriber (graphql-transport-ws, the
`websockets` client), each subscribed to `coordinationEvents` with the fields of the
event stream's document; `ready` once every subscription was sent and had a moment to
start (the protocol does not acknowledge a subscribe), then one JSON line of
receipts. The receipt time is taken when the message is read, before it is parsed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import websockets

from bench import sse_client

QUERY = "subscription { coordinationEvents { id cursor eventType actorId referenceId occurredAt } }"
# The server starts a subscription when it executes the operation, after the subscribe
# message: nothing tells the client when, so it waits this long (plus a little per stream).
SETTLE_S = 1.0


async def run(host: str, port: int, streams: int, wanted: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    receipts: dict[int, list[float]] = {}
    errors: list[str] = []
    subscribed = 0
    all_subscribed = loop.create_future()
    finished = 0
    all_finished = loop.create_future()

    async def subscriber() -> None:
        nonlocal subscribed, finished
        seen = 0
        try:
            async with websockets.connect(
                f"ws://{host}:{port}/graphql",
                subprotocols=["graphql-transport-ws"],
                ping_interval=None,
                max_queue=None,
                open_timeout=timeout,
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"no connection_ack: {ack}")
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
                subscribed += 1
                if subscribed == streams and not all_subscribed.done():
                    all_subscribed.set_result(None)
                async for raw in ws:
                    now = time.perf_counter()
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif kind == "next":
                        payload = message["payload"]
                        if payload.get("errors"):
                            raise RuntimeError(str(payload["errors"])[:300])
                        receipts.setdefault(int(payload["data"]["coordinationEvents"]["cursor"]), []).append(now)
                        seen += 1
                        if seen == wanted:
                            finished += 1
                            if finished == streams and not all_finished.done():
                                all_finished.set_result(None)
                            return
                    elif kind in ("error", "complete"):
                        raise RuntimeError(f"the subscription ended: {raw[:300]!r}")
        except Exception as error:  # reported with the results, never hidden
            errors.append(f"{type(error).__name__}: {error}")
            if not all_subscribed.done():
                all_subscribed.set_exception(RuntimeError(errors[-1]))

    tasks = [asyncio.create_task(subscriber()) for _ in range(streams)]
    await asyncio.wait_for(all_subscribed, timeout)
    await asyncio.sleep(SETTLE_S + streams / 1000)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stdin_closed = asyncio.ensure_future(loop.run_in_executor(None, sys.stdin.read))
    await asyncio.wait([all_finished, stdin_closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    sys.stdout.write(
        json.dumps({"receipts": receipts, "errors": sorted(set(errors)), "cpu_s": time.process_time()}) + "\n"
    )
    sys.stdout.flush()


def main() -> None:
    sse_client.main(run)


if __name__ == "__main__":
    main()
