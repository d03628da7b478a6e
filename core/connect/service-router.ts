import { type ConnectRouter, createConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../logging/logger.js";
import { MAX_REQUEST_BYTES } from "./body-limit.js";
import { errorInterceptor } from "./error-interceptor.js";
import { validationInterceptor } from "./validation-interceptor.js";

/**
 * The Connect router every Fulcrum deployable serves from (edge and functions), so
 * both speak the same protocol dialect and error model:
 * - the error interceptor is outermost, so every failure (authentication,
 *   validation, handler) leaves through `toConnectError`;
 * - `interceptors` (e.g. authentication) run next, before validation, so an
 *   unauthenticated caller learns nothing about the request shape;
 * - protovalidate runs before any handler.
 *
 * @example const router = createServiceRouter(logger); router.service(Health, impl);
 */
export function createServiceRouter(
  logger: Logger,
  interceptors: readonly Interceptor[] = [],
): ConnectRouter {
  return createConnectRouter({
    interceptors: [errorInterceptor(logger), ...interceptors, validationInterceptor],
    readMaxBytes: MAX_REQUEST_BYTES,
    // Native gRPC needs HTTP/2 trailers, which a Worker (and a Lambda function URL)
    // cannot send: refuse it (415) instead of answering without a status.
    grpc: false,
    // Strict JSON: a misspelled field or enum name (`tool_name`, `PHASE_PRETOOL`)
    // would otherwise be dropped silently and the request judged without it,
    // which for a policy check can turn a DENY into an ALLOW.
    jsonOptions: { ignoreUnknownFields: false },
  });
}
