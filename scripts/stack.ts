/**
 * The local stack (`npm run stack`): starts every Fulcrum component on this
 * machine, waits until each is healthy, prints where it listens, and stops
 * them all on Ctrl-C. Fully offline.
 *
 * Components today: the edge Worker under `wrangler dev` on 127.0.0.1:8787.
 * The control plane (functions, PostgreSQL), Redis and the audit pipeline
 * (NATS JetStream, ClickHouse) join as their issues land; each starter reuses
 * a server that already runs and starts one only when it is missing.
 */
import { startWranglerDev } from "./lib/wrangler-dev.js";

const EDGE_PORT = Number(process.env.FULCRUM_EDGE_PORT ?? 8787);

async function main() {
  console.log("starting the Fulcrum local stack…");
  const edge = await startWranglerDev(EDGE_PORT, { logFile: process.stdout });

  console.log("\nFulcrum local stack is up:");
  console.table([
    {
      component: "edge (wrangler dev)",
      url: edge.url,
      health: `${edge.url}/healthz`,
      grpcHealth: `${edge.url}/grpc.health.v1.Health/Check`,
    },
  ]);
  console.log(
    `try: curl -s ${edge.url}/fulcrum.policy.v1.PolicyService/CheckPolicy -H 'content-type: application/json' -d '{"tenant_id":"test","policy_id":"test"}'`,
  );
  console.log("Ctrl-C stops everything.");

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping…");
    await edge.stop();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((error) => {
  console.error(`local stack failed to start: ${(error as Error).message}`);
  process.exit(1);
});
