import type { DescService } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ActionType, RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyScope } from "../../proto/gen/fulcrum/tenant/v1/api_key_pb.js";
import { ApiKeyService } from "../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { TenantService } from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { type LocalCredentials, saveLocalCredentials } from "./local-credentials.js";

const DEMO_POLICY = "demo-guardrails";

function clientOf<S extends DescService>(service: S, url: string, key: string): Client<S> {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("x-api-key", key);
    return next(req);
  };
  return createClient(
    service,
    createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] }),
  );
}

const toolCondition = (prefix: string) => ({
  kind: {
    case: "field" as const,
    value: {
      field: "tool_names",
      operator: ConditionOperator.MATCHES,
      value: { kind: { case: "stringValue" as const, value: `^${prefix}` } },
    },
  },
});

/** What `npm run stack` enforces for the demo tenant: something to try at once. */
export const DEMO_RULES: Rule[] = [
  create(RuleSchema, {
    ruleId: "no-shell",
    name: "No shell tools",
    ruleType: RuleType.TOOL_RESTRICTION,
    conditions: [toolCondition("shell_")],
    actions: [{ type: ActionType.DENY, message: "shell tools are blocked" }],
  }),
  create(RuleSchema, {
    ruleId: "approve-deletes",
    name: "Deletes need approval",
    ruleType: RuleType.APPROVAL_REQUIRED,
    conditions: [toolCondition("delete_")],
    actions: [{ type: ActionType.REQUIRE_APPROVAL, message: "a person must approve deletes" }],
  }),
  // What sdk/examples/approval.ts asks for.
  create(RuleSchema, {
    ruleId: "approve-refunds",
    name: "Refunds need approval",
    ruleType: RuleType.APPROVAL_REQUIRED,
    conditions: [toolCondition("payments_refund")],
    actions: [{ type: ActionType.REQUIRE_APPROVAL, message: "a person must approve refunds" }],
  }),
  create(RuleSchema, {
    ruleId: "per-workflow",
    name: "60 calls a minute per workflow",
    ruleType: RuleType.RATE_LIMIT,
    actions: [
      {
        type: ActionType.THROTTLE,
        parameters: { requests_per_minute: "60", per: "workflow", failure_mode: "FAIL_OPEN" },
      },
    ],
  }),
];

/**
 * The `demo` tenant of the local stack, made once and kept in the credentials file: its
 * first admin's key, an active `demo-guardrails` policy and a check key for the edge.
 * Each step runs only when its result is missing, so an older credentials file is
 * completed on the next start.
 */
export async function ensureDemoTenant(url: string, credentials: LocalCredentials): Promise<void> {
  let demo = credentials.demo;
  if (!demo) {
    const tenants = clientOf(TenantService, url, credentials.platformKey);
    const existing = await tenants.listTenants({ pageSize: 1000 });
    if (existing.tenants.some((t) => t.slug === "demo")) {
      console.log("the demo tenant exists but its admin key is not in the credentials file");
      return;
    }
    const created = await tenants.createTenant({
      name: "Demo",
      slug: "demo",
      adminEmail: "admin@demo.local",
      adminDisplayName: "Demo admin",
    });
    demo = { tenantId: created.tenant?.tenantId ?? "", adminKey: created.secret };
    saveLocalCredentials({ ...credentials, demo });
  }
  if (demo.checkKey) return;
  const policies = clientOf(PolicyService, url, demo.adminKey);
  const listed = await policies.listPolicies({ pageSize: 100 });
  if (!listed.policies.some((p) => p.name === DEMO_POLICY)) {
    const created = await policies.createPolicy({
      policy: { name: DEMO_POLICY, rules: DEMO_RULES },
      changeSummary: "created by npm run stack",
    });
    await policies.activatePolicyVersion({ policyId: created.policy?.policyId ?? "", version: 1 });
  }
  const key = await clientOf(ApiKeyService, url, demo.adminKey).createApiKey({
    name: "demo check key (npm run stack)",
    scopes: [ApiKeyScope.CHECK],
  });
  saveLocalCredentials({ ...credentials, demo: { ...demo, checkKey: key.secret } });
}
