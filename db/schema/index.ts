/** The control plane's tables, one file each; they mirror db/migrations exactly. */
export { apiKeyScopes, apiKeys } from "./api-keys.js";
export { approvalStatuses, approvals } from "./approvals.js";
export { type BudgetThreshold, budgetPeriods, budgetStatuses, budgets } from "./budgets.js";
export { costEvents } from "./cost-events.js";
export { envelopeStatuses, envelopes } from "./envelopes.js";
export { events } from "./events.js";
export { modelPrices } from "./model-prices.js";
export { policies, policyEnforcements, policyStatuses } from "./policies.js";
export { policyActivationKinds, policyActivations } from "./policy-activations.js";
export { bytea, policyVersions } from "./policy-versions.js";
export { AUTH_ROLE, currentTenant } from "./tenant-rls.js";
export { tenants } from "./tenants.js";
export { userRoles, users } from "./users.js";
export { webhookDeliveries, webhookDeliveryStatuses } from "./webhook-deliveries.js";
export { webhooks } from "./webhooks.js";

import { apiKeys } from "./api-keys.js";
import { approvals } from "./approvals.js";
import { budgets } from "./budgets.js";
import { costEvents } from "./cost-events.js";
import { envelopes } from "./envelopes.js";
import { events } from "./events.js";
import { modelPrices } from "./model-prices.js";
import { policies } from "./policies.js";
import { policyActivations } from "./policy-activations.js";
import { policyVersions } from "./policy-versions.js";
import { users } from "./users.js";
import { webhookDeliveries } from "./webhook-deliveries.js";
import { webhooks } from "./webhooks.js";

/** Every table with `tenant_id` (all but `tenants`): RLS-isolated, reachable by fulcrum_app. */
export const tenantTables = {
  users,
  apiKeys,
  policies,
  policyVersions,
  policyActivations,
  budgets,
  envelopes,
  events,
  costEvents,
  approvals,
  modelPrices,
  webhooks,
  webhookDeliveries,
} as const;
