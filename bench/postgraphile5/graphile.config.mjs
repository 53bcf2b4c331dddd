// PostGraphile 5 as the benchmark runs it (bench/postgraphile5.py starts server.mjs, which loads this).
// The V4 preset keeps PostGraphile 4's names (allGoalStories, createTeamCheckin(input: {teamCheckin})),
// so bench/queries/postgraphile_*.graphql run against both versions unchanged. Everything else is at
// v4's defaults as bench/postgraphile.py starts v4: schema public, GraphiQL off, no subscriptions.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makeV4Preset } from "postgraphile/presets/v4";

const connectionString = process.env.BENCH_PG5_CONNECTION;
if (!connectionString) {
  throw new Error("BENCH_PG5_CONNECTION is not set (the database, with application_name=bench_postgraphile)");
}

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, makeV4Preset({ graphiql: false, subscriptions: false, watchPg: false })],
  pgServices: [
    makePgService({
      // application_name (in the string) is what fires the bench-only event trigger, as for v4.
      connectionString,
      schemas: ["public"],
      // v4's --max-pool-size 16: one pool of this size per worker process.
      poolConfig: { max: Number(process.env.BENCH_PG5_POOL_SIZE ?? "16") },
      // No LISTEN connection: there are no subscriptions, as v4 has none without --subscriptions.
      pubsub: false,
    }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

export default preset;
