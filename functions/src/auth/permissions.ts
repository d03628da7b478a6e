import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { TenantPrincipal, UserRole } from "./principal.js";

/**
 * What each role may do, in one table. Keys act as their user, so a key can never do
 * more than its user's role allows.
 * - viewer: read policies, versions and users; read the audit events (EventStore
 *   QueryEvents / GetExecutionEvents / StreamEvents / GetEventStoreStats); dry-run;
 *   open, read and move envelopes (SDK keys run executions); read approvals; read budgets,
 *   prices and spend; record usage (SDK keys settle their calls);
 * - policy_author: viewer + write, activate and roll back policies; review approvals;
 *   write budgets and model prices;
 * - admin: everything in the tenant, including users, API keys and webhooks.
 */
export type Permission =
  | "policies.read"
  | "policies.write"
  | "policies.publish"
  | "users.read"
  | "users.write"
  | "api_keys.read"
  | "api_keys.write"
  | "events.read"
  | "envelopes.read"
  | "envelopes.write"
  | "approvals.read"
  | "approvals.review"
  | "budgets.read"
  | "budgets.write"
  | "usage.write"
  | "webhooks.read"
  | "webhooks.write";

const GRANTS: Readonly<Record<UserRole, ReadonlySet<Permission>>> = {
  viewer: new Set([
    "policies.read",
    "users.read",
    "events.read",
    "envelopes.read",
    "envelopes.write",
    "approvals.read",
    "budgets.read",
    "usage.write",
  ]),
  policy_author: new Set([
    "policies.read",
    "policies.write",
    "policies.publish",
    "users.read",
    "events.read",
    "envelopes.read",
    "envelopes.write",
    "approvals.read",
    "approvals.review",
    "budgets.read",
    "budgets.write",
    "usage.write",
  ]),
  admin: new Set([
    "policies.read",
    "policies.write",
    "policies.publish",
    "users.read",
    "users.write",
    "api_keys.read",
    "api_keys.write",
    "events.read",
    "envelopes.read",
    "envelopes.write",
    "approvals.read",
    "approvals.review",
    "budgets.read",
    "budgets.write",
    "usage.write",
    "webhooks.read",
    "webhooks.write",
  ]),
};

export function can(principal: TenantPrincipal, permission: Permission): boolean {
  return GRANTS[principal.role].has(permission);
}

/** @throws FulcrumError PermissionDenied naming the role and what was refused. */
export function requirePermission(principal: TenantPrincipal, permission: Permission): void {
  if (!can(principal, permission)) {
    throw new FulcrumError(
      "PermissionDenied",
      `role ${principal.role} may not ${permission.replace(".", " ")}; ask a tenant admin`,
    );
  }
}
