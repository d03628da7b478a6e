import type { TestProject } from "vitest/node";
import { freePort } from "../../scripts/lib/ports.js";
import { startWranglerDev } from "../../scripts/lib/wrangler-dev.js";

declare module "vitest" {
  export interface ProvidedContext {
    edgeUrl: string;
  }
}

/**
 * Starts the edge Worker under `wrangler dev` once for the e2e tier, on a free
 * port (so it never collides with a developer's `npm run stack` on 8787).
 */
export default async function setup(project: TestProject) {
  const worker = await startWranglerDev(await freePort());
  project.provide("edgeUrl", worker.url);
  return async () => {
    await worker.stop();
  };
}
