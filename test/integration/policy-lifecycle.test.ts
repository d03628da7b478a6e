import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";
import { createDb } from "../../db/client.js";
import { createFunctionsApp } from "../../functions/src/app.js";
import { Decision, Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { EnforcementLevel, PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { PolicyVersionStatus } from "../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { DENY_DELETE_REGO, failure } from "../harness/policy-fixtures.js";
import { publishingHelpers } from "../harness/publishing-helpers.js";

// A policy's lifecycle after publishing, as the edge sees it: status changes (INACTIVE,
// ACTIVE, archived) take it out of and back into the tenant's active set in Redis (through
// the Upstash REST stand-in), the Policy message and row show the active version, a dry
// run evaluates a draft without publishing it, and an unreachable database answers
// Unavailable. Activation and rollback are in policy-publishing.test.ts.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

const { tenantWithPolicy, pointer, activeIn, auditActions } = publishingHelpers(() => stack);

describe("status changes", () => {
  it("INACTIVE takes the policy out of the active set, ACTIVE puts it back, delete clears it", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const off = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["status"] },
    });
    expect(off.policy?.status).toBe(PolicyStatus.INACTIVE);
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 0 });
    expect(await activeIn(t.tenantId, t.id)).toBeUndefined();
    const on = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, status: PolicyStatus.ACTIVE },
      updateMask: { paths: ["status"] },
    });
    expect(on.policy?.activeVersion).toBe(1);
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 1 });
    expect(await activeIn(t.tenantId, t.id)).toBe(1);
    await t.policies.deletePolicy({ policyId: t.id });
    expect(await pointer(t.tenantId, t.id)).toMatchObject({ version: 0 });
    expect(await activeIn(t.tenantId, t.id)).toBeUndefined();
    const audit = await auditActions(t.id);
    expect(audit.map((a) => a.action)).toEqual([
      "policy.created",
      "policy.version_activated",
      "policy.status_changed",
      "policy.status_changed",
      "policy.archived",
    ]);
    // Each names the active version and its hashes (what was unpublished / republished).
    const active = { active_version: 1, sha256: t.v1.sha256, wasm_sha256: t.v1.wasmSha256 };
    expect(audit[2]?.details).toMatchObject({ from: "ACTIVE", to: "INACTIVE", ...active });
    expect(audit[3]?.details).toMatchObject({ from: "INACTIVE", to: "ACTIVE", ...active });
    expect(audit[4]?.details).toMatchObject({ previous_status: "ACTIVE", ...active });
  });

  it("archiving a never-activated policy names no version in its audit row", async () => {
    const t = await tenantWithPolicy();
    await t.policies.deletePolicy({ policyId: t.id });
    expect((await auditActions(t.id)).at(-1)?.details).toMatchObject({
      previous_status: "DRAFT",
      active_version: null,
      sha256: null,
      wasm_sha256: null,
    });
  });
});

describe("the Policy message shows the active version", () => {
  const row = async (id: string) =>
    (
      await stack.owner.query(
        "SELECT enforcement, priority, active_version FROM policies WHERE id = $1",
        [id],
      )
    ).rows[0];

  it("Get/List/Update/Activate/Rollback answer the enforced definition, and the row mirrors it", async () => {
    const t = await tenantWithPolicy(DENY_DELETE_REGO);
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    const draft = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, enforcement: EnforcementLevel.AUDIT, priority: 7 },
      updateMask: { paths: ["enforcement", "priority"] },
    });
    expect(draft.version).toMatchObject({ version: 2, status: PolicyVersionStatus.DRAFT });
    expect(draft.version?.policy).toMatchObject({
      enforcement: EnforcementLevel.AUDIT,
      priority: 7,
    });
    const enforced = {
      enforcement: EnforcementLevel.BLOCK,
      priority: 0,
      regoSource: DENY_DELETE_REGO,
      activeVersion: 1,
      latestVersion: 2,
    };
    const got = await t.policies.getPolicy({ policyId: t.id });
    const listed = await t.policies.listPolicies({});
    for (const shown of [draft.policy, got.policy, listed.policies[0]]) {
      expect(shown).toMatchObject(enforced);
    }
    expect(await row(t.id)).toMatchObject({ enforcement: "BLOCK", priority: 0 });
    const meta = await stack.redis.get<PublishedPolicy>(stack.keys.version(t.tenantId, t.id, 1));
    expect(meta).toMatchObject({ enforcement: "BLOCK", priority: 0 });

    const on2 = await t.policies.activatePolicyVersion({ policyId: t.id, version: 2 });
    expect(on2.policy).toMatchObject({ enforcement: EnforcementLevel.AUDIT, priority: 7 });
    expect((await t.policies.getPolicy({ policyId: t.id })).policy).toMatchObject({
      enforcement: EnforcementLevel.AUDIT,
      activeVersion: 2,
    });
    expect(await row(t.id)).toMatchObject({ enforcement: "AUDIT", priority: 7 });

    const back = await t.policies.rollbackPolicy({ policyId: t.id });
    expect(back.policy).toMatchObject({ enforcement: EnforcementLevel.BLOCK, activeVersion: 1 });
    expect(await row(t.id)).toMatchObject({ enforcement: "BLOCK", priority: 0 });

    // INACTIVE keeps its active version: still the definition shown, and the row's.
    const off = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, status: PolicyStatus.INACTIVE },
      updateMask: { paths: ["status"] },
    });
    expect(off.policy).toMatchObject({ ...enforced, status: PolicyStatus.INACTIVE });
    // The rule-type filter looks at the shown definition too (v1 and v2 are both Rego).
    expect((await t.policies.listPolicies({ status: PolicyStatus.INACTIVE })).totalCount).toBe(1);
  });

  it("a never-activated policy shows, and its row mirrors, the newest draft", async () => {
    const t = await tenantWithPolicy();
    const draft = await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, enforcement: EnforcementLevel.WARN },
      updateMask: { paths: ["enforcement"] },
    });
    expect(draft.policy).toMatchObject({
      enforcement: EnforcementLevel.WARN,
      activeVersion: 0,
      latestVersion: 2,
    });
    expect(await row(t.id)).toMatchObject({ enforcement: "WARN", active_version: null });
  });
});

describe("DryRunPolicy", () => {
  it("evaluates a draft for real and leaves the active version, the database and Redis untouched", async () => {
    const t = await tenantWithPolicy();
    await t.policies.activatePolicyVersion({ policyId: t.id, version: 1 });
    await t.policies.updatePolicy({
      policy: { policyId: t.id, name: t.name, regoSource: DENY_DELETE_REGO },
      updateMask: { paths: ["rego_source"] },
    });
    const before = await pointer(t.tenantId, t.id);
    const counts = async () =>
      (
        await stack.owner.query(
          `SELECT (SELECT count(*) FROM policy_versions WHERE policy_id = $1)::int AS versions,
                  (SELECT count(*) FROM policy_activations WHERE policy_id = $1)::int AS activations,
                  (SELECT count(*) FROM events WHERE target_id = $1::text)::int AS events,
                  (SELECT revision FROM policies WHERE id = $1)::int AS revision`,
          [t.id],
        )
      ).rows[0];
    const countsBefore = await counts();

    const res = await t.policies.dryRunPolicy({
      policyId: t.id,
      context: { toolNames: ["delete_user"], phase: Phase.PRE_TOOL_CALL },
    });
    expect(res.version).toBe(2);
    expect(res.result?.decision).toBe(Decision.DENY);
    expect(res.result?.dryRun).toBe(true);
    expect(res.result?.reasons.join()).toMatch(/delete tools are blocked/);
    expect(res.activeDecision).toBe(Decision.WARN);

    const allowed = await t.policies.dryRunPolicy({
      policyId: t.id,
      version: 2,
      context: { toolNames: ["read_user"] },
    });
    expect(allowed.result?.decision).toBe(Decision.ALLOW);

    const inline = await t.policies.dryRunPolicy({
      policy: { name: "inline", regoSource: DENY_DELETE_REGO },
      context: { toolNames: ["delete_db"] },
    });
    expect(inline.version).toBe(0);
    expect(inline.result?.decision).toBe(Decision.DENY);
    expect(inline.activeDecision).toBe(Decision.UNSPECIFIED);

    expect(await pointer(t.tenantId, t.id)).toEqual(before);
    expect(await counts()).toEqual(countsBefore);
    expect((await t.policies.getPolicy({ policyId: t.id })).policy?.activeVersion).toBe(1);
    const forged = await failure(
      t.policies.dryRunPolicy({ policyId: t.id, context: { tenantId: "someone-else" } }),
    );
    expect(forged.code).toBe(Code.PermissionDenied);
  });
});

describe("database unavailable", () => {
  // The functions app again, with its database pool aimed at a PostgreSQL the proxy will
  // not reach (as when the database is down): authentication still uses the real one, so
  // the call gets as far as the policy handler's transaction.
  it("answers Unavailable when PostgreSQL cannot be reached", async () => {
    const t = await tenantWithPolicy();
    const dead = createDb({
      connectionString: "postgres://fulcrum_app@127.0.0.1:1/nowhere",
      connectionTimeoutMillis: 2_000,
    });
    try {
      const app = createFunctionsApp({ ...stack.deps, db: dead.db }, "test");
      const transport = createConnectTransport({
        baseUrl: "http://functions.test",
        fetch: async (input, init) => app.fetch(new Request(input, init)),
      });
      const policies = createClient(PolicyService, transport);
      const headers = { "x-api-key": t.adminKey };
      const read = await failure(policies.getPolicy({ policyId: t.id }, { headers }));
      expect(read.code).toBe(Code.Unavailable);
      const write = await failure(
        policies.activatePolicyVersion({ policyId: t.id, version: 1 }, { headers }),
      );
      expect(write.code).toBe(Code.Unavailable);
      expect(write.rawMessage).toMatch(/database is unavailable/);
    } finally {
      await dead.close();
    }
    expect(await pointer(t.tenantId, t.id)).toBeNull();
  });
});
