import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { TenantPrincipal, UserRole } from "./principal.js";

/**
 * What each role may do, in one table. Keys act as their user, so a key can never do
 * more than its user's role allows.
 * - viewer: read policies, versions and users; read the audit events (EventStore
 *   QueryEvents / GetExecutionEvents / StreamEvents / GetEventStoreStats); dry-run;
 * - policy_author: viewer + write, activate and roll back policies;
 * - admin: everything in the tenant, including users and API keys.
 */
export type Permission =
  | "policies.read"
  | "policies.write"
  | "policies.publish"
  | "users.read"
  | "users.write"
  | "api_keys.read"
  | "api_keys.write"
  | "events.read";

const GRANTS: Readonly<Record<UserRole, ReadonlySet<Permission>>> = {
  viewer: new Set(["policies.read", "users.read", "events.read"]),
  policy_author: new Set([
    "policies.read",
    "policies.write",
    "policies.publish",
    "users.read",
    "events.read",
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
