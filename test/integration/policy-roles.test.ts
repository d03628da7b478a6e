import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicyStatus } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { userWithKey } from "../harness/management-helpers.js";
import {
  DENY_DELETE_REGO,
  failure,
  must,
  uniqueName,
  WARN_ALWAYS_REGO,
} from "../harness/policy-fixtures.js";

// Every PolicyService management RPC × role, through the real stack: viewers read and
// dry-run stored versions; policy authors and admins may do everything in PolicyService.
let stack: FunctionsStack;
type Client = ReturnType<typeof policyClient>;
const policyClient = (key: string) => stack.client(PolicyService, key);
let admin: Client;
const clients = new Map<string, Client>();
let authorKey = "";

beforeAll(async () => {
  stack = await startFunctionsStack();
  const t = await stack.createTenant();
  admin = policyClient(t.adminKey);
  clients.set("admin", admin);
  const author = await userWithKey(stack, t.adminKey, UserRole.POLICY_AUTHOR);
  authorKey = author.key;
  clients.set("policy_author", policyClient(author.key));
  clients.set("viewer", policyClient((await userWithKey(stack, t.adminKey, UserRole.VIEWER)).key));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** A new DRAFT policy (version 1), made by the admin. */
async function draft(): Promise<string> {
  const created = await admin.createPolicy({
    policy: { name: uniqueName("role"), regoSource: WARN_ALWAYS_REGO },
  });
  return must(created.policy).policyId;
}

/** A new ACTIVE policy: version 1 active (and, with `v2`, version 2 activated after it). */
async function active(v2 = false): Promise<string> {
  const id = await draft();
  await admin.activatePolicyVersion({ policyId: id, version: 1 });
  if (v2) {
    await admin.updatePolicy({
      policy: { policyId: id, name: "ignored", regoSource: DENY_DELETE_REGO },
      updateMask: { paths: ["rego_source"] },
    });
    await admin.activatePolicyVersion({ policyId: id, version: 2 });
  }
  return id;
}

type Need = "read" | "write" | "publish";

/** One RPC (or one variant of it, when permissions depend on the request or the policy). */
interface Case {
  rpc: string;
  need: Need;
  run: (client: Client) => Promise<unknown>;
}

const CASES: Case[] = [
  {
    rpc: "CreatePolicy (DRAFT)",
    need: "write",
    run: (c) => c.createPolicy({ policy: { name: uniqueName("c"), regoSource: WARN_ALWAYS_REGO } }),
  },
  {
    rpc: "CreatePolicy (ACTIVE)",
    need: "publish",
    run: (c) =>
      c.createPolicy({
        policy: {
          name: uniqueName("c"),
          regoSource: WARN_ALWAYS_REGO,
          status: PolicyStatus.ACTIVE,
        },
      }),
  },
  { rpc: "GetPolicy", need: "read", run: async (c) => c.getPolicy({ policyId: await draft() }) },
  { rpc: "ListPolicies", need: "read", run: (c) => c.listPolicies({}) },
  {
    rpc: "UpdatePolicy (definition)",
    need: "write",
    run: async (c) =>
      c.updatePolicy({
        policy: { policyId: await draft(), name: "x", regoSource: DENY_DELETE_REGO },
        updateMask: { paths: ["rego_source"] },
      }),
  },
  {
    rpc: "UpdatePolicy (status)",
    need: "publish",
    run: async (c) =>
      c.updatePolicy({
        policy: { policyId: await active(), name: "x", status: PolicyStatus.INACTIVE },
        updateMask: { paths: ["status"] },
      }),
  },
  {
    rpc: "DeletePolicy (draft)",
    need: "write",
    run: async (c) => c.deletePolicy({ policyId: await draft() }),
  },
  {
    rpc: "DeletePolicy (active: unpublishes)",
    need: "publish",
    run: async (c) => c.deletePolicy({ policyId: await active() }),
  },
  {
    rpc: "ListPolicyVersions",
    need: "read",
    run: async (c) => c.listPolicyVersions({ policyId: await draft() }),
  },
  {
    rpc: "GetPolicyVersion",
    need: "read",
    run: async (c) => c.getPolicyVersion({ policyId: await draft(), version: 1 }),
  },
  {
    rpc: "ActivatePolicyVersion",
    need: "publish",
    run: async (c) => c.activatePolicyVersion({ policyId: await draft(), version: 1 }),
  },
  {
    rpc: "RollbackPolicy",
    need: "publish",
    run: async (c) => c.rollbackPolicy({ policyId: await active(true), reason: "roles" }),
  },
  {
    rpc: "DryRunPolicy (stored version)",
    need: "read",
    run: async (c) => c.dryRunPolicy({ policyId: await draft(), version: 1, context: {} }),
  },
  {
    rpc: "DryRunPolicy (inline policy: compiles Rego)",
    need: "write",
    run: (c) =>
      c.dryRunPolicy({
        policy: { name: "inline", regoSource: DENY_DELETE_REGO },
        context: { toolNames: ["delete_user"] },
      }),
  },
];

const GRANTS: Record<string, ReadonlySet<Need>> = {
  viewer: new Set(["read"]),
  policy_author: new Set(["read", "write", "publish"]),
  admin: new Set(["read", "write", "publish"]),
};

const MATRIX = CASES.flatMap((c) =>
  Object.entries(GRANTS).map(([role, grants]) => ({ ...c, role, allowed: grants.has(c.need) })),
);

describe("PolicyService permissions by role", () => {
  it.each(MATRIX)("$rpc as $role: allowed $allowed", async ({ role, run, allowed }) => {
    const client = must(clients.get(role));
    if (allowed) {
      await run(client);
    } else {
      const error = await failure(run(client));
      expect(Code[error.code], error.rawMessage).toBe(Code[Code.PermissionDenied]);
    }
  });

  it("covers every management RPC of PolicyService", () => {
    const served = new Set(CASES.map((c) => c.rpc.split(" ")[0]));
    const management = PolicyService.methods
      .map((m) => m.name)
      .filter((name) => !/^(Evaluate|Check)|Approval|History/.test(name));
    expect([...served].sort()).toEqual(management.sort());
  });

  it("a refused archive of an active policy changes nothing", async () => {
    const id = await active();
    await failure(must(clients.get("viewer")).deletePolicy({ policyId: id }));
    expect((await admin.getPolicy({ policyId: id })).policy?.status).toBe(PolicyStatus.ACTIVE);
  });

  it("a policy author may not manage API keys", async () => {
    const keys = await failure(stack.client(ApiKeyService, authorKey).listApiKeys({}));
    expect(keys.code).toBe(Code.PermissionDenied);
  });
});
