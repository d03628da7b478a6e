import type { Interceptor } from "@connectrpc/connect";
import { parseApiKeyHeader } from "../../../core/auth/api-key.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { CostService } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { PolicyService } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { TenantService } from "../../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import type { Authenticator } from "./authenticator.js";
import { type Principal, principalKey } from "./principal.js";

/**
 * The SDK's runtime calls, which a `check` key may make besides the edge's decisions: it
 * settles the usage of the calls it made, runs its envelopes and waits for approvals.
 * Everything else on this API needs the `manage` scope.
 */
const CHECK_SCOPE_METHODS: ReadonlySet<string> = new Set([
  `${CostService.typeName}/RecordUsage`,
  `${CostService.typeName}/GetBudgetStatus`,
  `${EnvelopeService.typeName}/CreateEnvelope`,
  `${EnvelopeService.typeName}/GetEnvelope`,
  `${EnvelopeService.typeName}/UpdateEnvelopeStatus`,
  `${PolicyService.typeName}/GetApproval`,
]);

const MISSING_KEY =
  "an API key is required: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`";

/**
 * Authenticates every call except health checks and stores the principal in the
 * context values. Which callers a service accepts is decided here, once:
 * TenantService is the platform operator's; every other service takes a tenant key
 * with the `manage` scope (`check` keys: the edge's decisions and the SDK's runtime calls
 * in CHECK_SCOPE_METHODS only).
 */
export function authInterceptor(authenticator: Authenticator): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    const principal = await principalOf(authenticator, req.header);
    if (req.service.typeName === TenantService.typeName) {
      if (principal.kind !== "platform_admin") {
        throw new FulcrumError(
          "PermissionDenied",
          "TenantService is for the platform operator; tenant keys manage their own tenant through the other services",
        );
      }
    } else if (principal.kind !== "tenant_key") {
      throw new FulcrumError(
        "PermissionDenied",
        "the platform key only manages tenants; use a tenant API key for this method",
      );
    } else if (
      !principal.scopes.includes("manage") &&
      !CHECK_SCOPE_METHODS.has(`${req.service.typeName}/${req.method.name}`)
    ) {
      throw new FulcrumError(
        "PermissionDenied",
        "this API key has only the check scope; management calls need a key with the manage scope",
      );
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}

/** The caller of a request: the platform operator's key or a tenant's. */
async function principalOf(authenticator: Authenticator, headers: Headers): Promise<Principal> {
  const secret = parseApiKeyHeader(headers);
  if (!secret) throw new FulcrumError("Unauthenticated", MISSING_KEY);
  return authenticator.authenticate(secret);
}
