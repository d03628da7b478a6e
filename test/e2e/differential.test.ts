import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toDecisionInput } from "../../core/policy/decision-input.js";
import { expandDecision } from "../../core/policy/expand-decision.js";
import { prepareTenantData } from "../../core/policy/prepare-tenant-data.js";
import type {
  DecisionOutput,
  RawDecisionOutput,
  TenantConfig,
} from "../../core/policy/tenant-config.js";
import {
  ActionType,
  Decision,
  EvaluationContextSchema,
  type EvaluationResult,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { runOpa } from "../../scripts/opa.js";
import { type EvaluationCase, generateCases } from "../harness/policy-cases.js";
import { freePort } from "../harness/ports.js";
import { type RunningWorker, startWranglerDev } from "../harness/wrangler-dev.js";

/**
 * Differential test: for a few hundred generated tenant configurations and
 * requests, the decision the running Worker returns (wasm, through Connect)
 * equals what OPA's own evaluator (`opa eval`) computes from the same Rego
 * source, the same data document and the same input document.
 */
const SEED = Number(process.env.FULCRUM_DIFF_SEED ?? 20261124);
const TENANTS = 60;
const PER_TENANT = 5;

const root = join(import.meta.dirname, "..", "..");
const workDir = join(root, ".tmp", "differential");
const regoDir = join(root, "policies", "fulcrum", "governance");
const regoFiles = readdirSync(regoDir)
  .filter((f) => f.endsWith(".rego") && !f.endsWith("_test.rego"))
  .map((f) => join(regoDir, f));

const { configs, cases } = generateCases(SEED, TENANTS, PER_TENANT);
let worker: RunningWorker;

beforeAll(async () => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  // Generated data holds no single quote, so a single-quoted dotenv value carries the JSON as is.
  const envFile = join(workDir, "edge.env");
  writeFileSync(envFile, `TENANT_CONFIGS='${JSON.stringify(configs)}'\n`);
  for (const [tenantId, config] of Object.entries(configs)) {
    writeFileSync(join(workDir, `${tenantId}.json`), JSON.stringify(prepareTenantData(config)));
  }
  worker = await startWranglerDev(await freePort(), { envFile });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
});

/** What both sides must agree on, in one comparable shape. */
interface Comparable {
  decision: string;
  would_decide?: string;
  results?: ComparableResult[];
  matched: string[];
  actions: string[];
}
interface ComparableResult {
  policy_id: string;
  version: string;
  decision: string;
  would_decide: string;
  dry_run: boolean;
  matched: string[];
  actions: string[];
}

const ruleKey = (m: { policy_id?: string; rule_id: string; action: string; reason: string }) =>
  `${m.policy_id ?? ""}/${m.rule_id} ${m.action}: ${m.reason}`;
const actionKey = (a: { type: string; message: string }) => `${a.type}: ${a.message}`;

function contextOf(c: EvaluationCase) {
  return create(EvaluationContextSchema, {
    ...c.context,
    phase: c.context.phase ? Phase[c.context.phase as keyof typeof Phase] : Phase.UNSPECIFIED,
  });
}

async function expected(c: EvaluationCase): Promise<Comparable> {
  const input = toDecisionInput(contextOf(c), c.policyIds, c.dryRun);
  const args = ["eval", "--format", "json", "--stdin-input"];
  for (const file of regoFiles) args.push("--data", file);
  args.push("--data", join(workDir, `${c.tenantId}.json`), "data.fulcrum.governance.decision");
  const { stdout } = await runOpa(args, { stdin: JSON.stringify(input) });
  const raw = JSON.parse(stdout).result[0].expressions[0].value as RawDecisionOutput;
  const output: DecisionOutput = expandDecision(
    prepareTenantData(configs[c.tenantId] as TenantConfig),
    raw,
  );
  const results = output.results.map((r) => ({
    policy_id: r.policy_id,
    version: r.policy_version,
    decision: r.decision,
    would_decide: r.would_decide,
    dry_run: r.dry_run,
    matched: r.matched_rules.map((m) => ruleKey({ ...m, policy_id: r.policy_id })),
    actions: r.actions.map(actionKey),
  }));
  if (c.policyIds.length === 0) {
    return {
      decision: output.decision,
      would_decide: output.would_decide,
      matched: output.matched_rules.map(ruleKey),
      actions: output.actions.map(actionKey),
    };
  }
  return {
    decision: output.decision,
    results,
    matched: results.flatMap((r) => r.matched),
    actions: results.flatMap((r) => r.actions),
  };
}

function fromEdgeResult(r: EvaluationResult): ComparableResult {
  return {
    policy_id: r.policyId,
    version: r.policyVersion,
    decision: Decision[r.decision],
    would_decide: Decision[r.wouldDecide],
    dry_run: r.dryRun,
    matched: r.matchedRules.map((m) =>
      ruleKey({
        policy_id: r.policyId,
        rule_id: m.ruleId,
        action: ActionType[m.action],
        reason: m.reason,
      }),
    ),
    actions: r.actions.map((a) => actionKey({ type: ActionType[a.type], message: a.message })),
  };
}

async function actual(c: EvaluationCase): Promise<Comparable> {
  const client = createClient(PolicyService, createConnectTransport({ baseUrl: worker.url }));
  const context = contextOf(c);
  if (c.policyIds.length === 0) {
    const { result } = await client.evaluatePolicy({ context, dryRun: c.dryRun });
    if (!result) throw new Error("no result");
    return {
      decision: Decision[result.decision],
      would_decide: Decision[result.wouldDecide],
      matched: result.matchedRules.map((m) =>
        ruleKey({
          policy_id: m.policyId,
          rule_id: m.ruleId,
          action: ActionType[m.action],
          reason: m.reason,
        }),
      ),
      actions: result.actions.map((a) =>
        actionKey({ type: ActionType[a.type], message: a.message }),
      ),
    };
  }
  const response = await client.evaluatePolicies({
    policyIds: c.policyIds,
    context,
    dryRun: c.dryRun,
  });
  const results = response.results.map(fromEdgeResult);
  return {
    decision: Decision[response.finalDecision],
    results,
    matched: results.flatMap((r) => r.matched),
    actions: results.flatMap((r) => r.actions),
  };
}

/** Runs `fn` over `items` with at most `limit` in flight (opa eval is a process per case). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

describe(`differential: edge wasm vs opa eval (${cases.length} cases, seed ${SEED})`, () => {
  it("covers every decision, with and without named policies", () => {
    // Guards the generator: a differential test over only ALLOWs would prove little.
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(cases.some((c) => c.policyIds.length === 0)).toBe(true);
    expect(cases.some((c) => c.policyIds.length > 1)).toBe(true);
  });

  it("gives the same decision, matched rules, reasons and actions for every case", async () => {
    const pairs = await mapLimit(cases, 4, async (c) => ({
      c,
      want: await expected(c),
      got: await actual(c),
    }));
    const decisions = new Set(pairs.map((p) => p.want.decision));
    expect(decisions).toEqual(new Set(["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]));
    const mismatches = pairs.filter((p) => JSON.stringify(p.want) !== JSON.stringify(p.got));
    for (const m of mismatches.slice(0, 3)) {
      console.log(JSON.stringify({ case: m.c, opa: m.want, edge: m.got }, null, 2));
    }
    expect(mismatches.length).toBe(0);
    // At least a fifth of the cases must exercise matched rules, not only empty ALLOWs.
    expect(pairs.filter((p) => p.want.matched.length > 0).length).toBeGreaterThan(cases.length / 5);
  }, 300_000);
});
