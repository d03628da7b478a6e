import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { type Code, ConnectError } from "@connectrpc/connect";
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import {
  ActionType,
  type EvaluationContextSchema,
  Phase,
  RuleType,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { clientOf, type E2eTenant, edge, functionsUrl, newTenant, timeUntil } from "./e2e-stack.js";

/**
 * Helpers of the governed-execution e2e tests (governed-budgets, governed-approvals,
 * governed-envelopes): tenants with a policy of shell tools denied and deletes and
 * refunds needing approval, their CostService and EnvelopeService clients, token
 * budgets, and CheckPolicy calls at the edge (or at another edge process).
 */
export type Context = MessageInitShape<typeof EvaluationContextSchema>;

const toolRule = (ruleId: string, prefix: string, action: ActionType, message: string): Rule =>
  create(RuleSchema, {
    ruleId,
    name: ruleId,
    ruleType:
      action === ActionType.REQUIRE_APPROVAL
        ? RuleType.APPROVAL_REQUIRED
        : RuleType.TOOL_RESTRICTION,
    conditions: [
      {
        kind: {
          case: "field",
          value: {
            field: "tool_names",
            operator: ConditionOperator.MATCHES,
            value: { kind: { case: "stringValue", value: `^${prefix}` } },
          },
        },
      },
    ],
    actions: [{ type: action, message }],
  });

/** Shell tools denied, deletes and refunds need a person: the tenants' policy here. */
export const RULES: Rule[] = [
  toolRule("no-shell", "shell_", ActionType.DENY, "shell tools are blocked"),
  toolRule("approve-deletes", "delete_", ActionType.REQUIRE_APPROVAL, "deletes need approval"),
  toolRule(
    "approve-refunds",
    "payments_refund",
    ActionType.REQUIRE_APPROVAL,
    "refunds need approval",
  ),
];

export interface GovernedTenant extends E2eTenant {
  checkKey: string;
  costs: ReturnType<typeof clientOf<typeof CostService>>;
  /** CostService with the check key: what the SDK settles with. */
  sdkCosts: ReturnType<typeof clientOf<typeof CostService>>;
  envelopes: ReturnType<typeof clientOf<typeof EnvelopeService>>;
}

export async function governedTenant(label: string): Promise<GovernedTenant> {
  const t = await newTenant(label);
  await t.activate({ rules: RULES });
  const { key: checkKey } = await t.newKey();
  return {
    ...t,
    checkKey,
    costs: clientOf(CostService, functionsUrl(), t.adminKey),
    sdkCosts: clientOf(CostService, functionsUrl(), checkKey),
    envelopes: clientOf(EnvelopeService, functionsUrl(), checkKey),
  };
}

export async function tokenBudget(t: GovernedTenant, maxTokens: number, extra: object = {}) {
  const res = await t.costs.createBudget({
    budget: {
      name: `tokens-${randomBytes(3).toString("hex")}`,
      period: BudgetPeriod.DAILY,
      limits: { maxTokens: BigInt(maxTokens) },
      ...extra,
    },
  });
  return res.budget?.budgetId ?? "";
}

export const check = (key: string, context: Context, baseUrl?: string) =>
  (baseUrl ? clientOf(PolicyService, baseUrl, key) : edge(key)).checkPolicy({ context });

export const llmCall = (estimatedTokens: number, extra: Context = {}): Context => ({
  workflowId: "support-bot",
  phase: Phase.PRE_LLM_CALL,
  modelId: "gpt-4o-mini",
  estimatedTokens,
  ...extra,
});

/** Waits until the edge sees the tenant's budget (it caches budget sets for 500 ms). */
export async function untilEdgeSeesBudget(t: GovernedTenant, budgetId: string, baseUrl?: string) {
  await timeUntil(async () => {
    const res = await check(t.checkKey, { workflowId: "probe" }, baseUrl);
    return res.budget?.budgets.some((b) => b.budgetId === budgetId) ?? false;
  }, 10_000);
}

export async function codeOf(call: Promise<unknown>): Promise<Code | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}
