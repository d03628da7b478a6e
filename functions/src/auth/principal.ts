import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ApiKeyScope, UserRole } from "../../../core/auth/api-key.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";

export type { ApiKeyScope, UserRole };

/**
 * Who is calling, established once per request by the authentication interceptor from
 * the API key (never from the request body: a forged `tenant_id` changes nothing).
 */
export type Principal =
  /** The platform operator (TenantService). Belongs to no tenant. */
  | { kind: "platform_admin" }
  /** A tenant's key, acting as its user with that user's role. */
  | {
      kind: "tenant_key";
      tenantId: string;
      userId: string;
      keyId: string;
      /**
       * The user who created the key; null when the platform operator did (a tenant's
       * first key). An admin may mint a key acting as another user: the audit trail
       * records both, so such a key never hides who stands behind it.
       */
      keyCreatedBy: string | null;
      role: UserRole;
      scopes: readonly ApiKeyScope[];
    };

export type TenantPrincipal = Extract<Principal, { kind: "tenant_key" }>;

export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The caller of a tenant-scoped method; the interceptor guarantees one exists. */
export function tenantCaller(ctx: HandlerContext): TenantPrincipal {
  const principal = ctx.values.get(principalKey);
  if (principal?.kind !== "tenant_key") {
    throw new FulcrumError("Unauthenticated", "this method needs a tenant API key");
  }
  return principal;
}

/** How the audit trail names the caller. */
export function actorOf(principal: Principal): {
  actorType: "api_key" | "system";
  actorId: string;
} {
  return principal.kind === "tenant_key"
    ? { actorType: "api_key", actorId: principal.keyId }
    : { actorType: "system", actorId: "platform_admin" };
}
