// PostGraphile 5 over node:http for the benchmark, with BENCH_PG5_WORKERS processes sharing one port
// through node:cluster: v5 has no --cluster-workers, and v4 runs with as many workers as our server.
// Each worker builds its schema first; the port opens once every worker is ready, so the harness's
// first request (it waits for any HTTP answer) never meets a half-started cluster.
import cluster from "node:cluster";
import { createServer } from "node:http";
import process from "node:process";

const workers = Number(process.env.BENCH_PG5_WORKERS ?? "1");
const port = Number(process.env.BENCH_PG5_PORT);
const host = process.env.BENCH_PG5_HOST ?? "127.0.0.1";
if (!Number.isInteger(workers) || workers < 1 || !Number.isInteger(port) || port < 1) {
  console.error("BENCH_PG5_WORKERS (>= 1) and BENCH_PG5_PORT must be set");
  process.exit(2);
}

if (cluster.isPrimary && workers > 1) {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    worker.on("message", (message) => {
      if (message === "ready" && ++ready === workers) {
        for (const each of Object.values(cluster.workers)) each.send("listen");
        console.log(`PostGraphile 5: ${workers} workers on http://${host}:${port}/graphql`);
      }
    });
  }
  // One worker gone means the measurement would be of fewer workers than stated: stop everything.
  cluster.on("exit", (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} exited (${signal ?? code}); stopping`);
    process.exit(1);
  });
} else {
  const { postgraphile } = await import("postgraphile");
  const { grafserv } = await import("postgraphile/grafserv/node");
  const { default: preset } = await import("./graphile.config.mjs");
  const pgl = postgraphile(preset);
  await pgl.getSchemaResult();
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  await serv.addTo(server);
  const listen = () => server.listen(port, host);
  if (cluster.isWorker) {
    process.on("message", (message) => message === "listen" && listen());
    process.send("ready");
  } else {
    server.once("listening", () => console.log(`PostGraphile 5 on http://${host}:${port}/graphql`));
    listen();
  }
}
