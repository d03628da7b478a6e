import type { Interceptor } from "@connectrpc/connect";
import { parseApiKeyHeader } from "../../../core/auth/api-key.js";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import { callerKey } from "./edge-context.js";

const MISSING_KEY =
  "an API key is required: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`";

/** What the interceptor needs of the key authenticator (edge/src/auth/key-authenticator.ts). */
export interface ApiKeyVerifier {
  authenticate(secret: string): Promise<ApiKeyRecord>;
}

/**
 * Authenticates every call except health checks: the key (x-api-key or Bearer) must
 * be a usable key with the `check` scope. `manage`-only keys are for the management
 * API (PermissionDenied here, as a check key is there). The tenant comes from the key.
 */
export function edgeAuthInterceptor(verifier: ApiKeyVerifier): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    const secret = parseApiKeyHeader(req.header);
    if (!secret) throw new FulcrumError("Unauthenticated", MISSING_KEY);
    const record = await verifier.authenticate(secret);
    if (!record.scopes.includes("check")) {
      throw new FulcrumError(
        "PermissionDenied",
        "this API key has only the manage scope; policy checks need a key with the check scope",
      );
    }
    req.contextValues.set(callerKey, record);
    return next(req);
  };
}
