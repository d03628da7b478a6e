import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/lib/ports.js";
import { type RunningWorker, startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import {
  canonical,
  decisionOf,
  edgeResponse,
  expectedResponse,
  firstDifference,
  mapLimit,
  matchedOf,
  normaliseReference,
  referenceDecision,
} from "../harness/differential.js";
import { generateCases } from "../harness/policy-cases.js";

/**
 * Differential test: for a few hundred generated tenant configurations and
 * requests, the decision the running edge Worker returns (through Connect:
 * prepareTenantData + the optimised wasm + expandDecision + the RPC mapping)
 * equals what `opa eval` computes with the REFERENCE specification
 * (policies/reference/, `data.fulcrum.reference.decision`) over the RAW
 * tenant configuration and the same request. No TypeScript of the edge's
 * decision path is used on the expected side: the oracle is independent.
 */
const SEED = Number(process.env.FULCRUM_DIFF_SEED ?? 20261124);
const TENANTS = 60;
const PER_TENANT = 5;

const root = join(import.meta.dirname, "..", "..");
const workDir = join(root, ".tmp", "differential");
const referenceDir = join(root, "policies", "reference");
const referenceFiles = readdirSync(referenceDir)
  .filter((f) => f.endsWith(".rego") && !f.endsWith("_test.rego"))
  .map((f) => join(referenceDir, f));

const { configs, cases } = generateCases(SEED, TENANTS, PER_TENANT);
let worker: RunningWorker;

beforeAll(async () => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  // Generated data holds no single quote, so a single-quoted dotenv value carries the JSON as is.
  const envFile = join(workDir, "edge.env");
  writeFileSync(envFile, `TENANT_CONFIGS='${JSON.stringify(configs)}'\n`);
  // The reference reads the raw configuration: data.tenant_id, data.policies.
  for (const [tenantId, config] of Object.entries(configs)) {
    writeFileSync(join(workDir, `${tenantId}.json`), JSON.stringify(config));
  }
  worker = await startWranglerDev(await freePort(), { envFile });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
});

describe(`differential: edge (wasm) vs reference Rego under opa eval (${cases.length} cases, seed ${SEED})`, () => {
  it("covers every decision, with and without named policies", () => {
    // Guards the generator: a differential test over only ALLOWs would prove little.
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(cases.some((c) => c.policyIds.length === 0)).toBe(true);
    expect(cases.some((c) => c.policyIds.length > 1)).toBe(true);
  });

  it("gives the same decision document (minus the dropped fields) for every case", async () => {
    const pairs = await mapLimit(cases, 4, async (c) => {
      const reference = await referenceDecision(c, referenceFiles, workDir);
      return {
        c,
        want: expectedResponse(c, normaliseReference(reference)),
        got: await edgeResponse(c, worker.url),
      };
    });
    const decisions = new Set(pairs.map((p) => decisionOf(p.want)));
    expect(decisions).toEqual(new Set(["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]));
    const mismatches = pairs.filter((p) => canonical(p.want) !== canonical(p.got));
    for (const m of mismatches.slice(0, 3)) {
      console.log(
        JSON.stringify(
          {
            difference: firstDifference(m.want, m.got),
            case: m.c,
            config: configs[m.c.tenantId],
            reference: m.want,
            edge: m.got,
          },
          null,
          2,
        ),
      );
    }
    expect(mismatches.map((m) => firstDifference(m.want, m.got))).toEqual([]);
    // At least a fifth of the cases must exercise matched rules, not only empty ALLOWs.
    expect(pairs.filter((p) => matchedOf(p.want) > 0).length).toBeGreaterThan(cases.length / 5);
  }, 300_000);
});
