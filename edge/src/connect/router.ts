import { type ConnectRouter, createConnectRouter } from "@connectrpc/connect";
import { CostService } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventStoreService } from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import type { Logger } from "../logger.js";
import type { EvaluationDeps } from "../services/evaluate.js";
import { healthService } from "../services/health-service.js";
import { policyEvaluationService } from "../services/policy-service.js";
import { MAX_REQUEST_BYTES } from "./body-limit.js";
import { errorInterceptor } from "./error-interceptor.js";
import { validationInterceptor } from "./validation-interceptor.js";

/**
 * The services this edge implements, which Health reports on. The other
 * contract services are registered so their methods answer Unimplemented,
 * but they are not reported as SERVING.
 */
export const IMPLEMENTED_SERVICES = [PolicyService.typeName, Health.typeName] as const;

/**
 * Every Connect service the edge answers. Services whose methods later issues
 * implement are registered empty, so they answer Unimplemented rather than 404.
 * The error interceptor is outermost so validation failures pass through it too.
 */
export function createEdgeRouter(deps: EvaluationDeps, logger: Logger): ConnectRouter {
  const router = createConnectRouter({
    interceptors: [errorInterceptor(logger), validationInterceptor],
    readMaxBytes: MAX_REQUEST_BYTES,
    // Native gRPC needs HTTP/2 trailers, which a Worker cannot send: refuse it
    // (415) instead of answering without a status.
    grpc: false,
    // Strict JSON: a misspelled field or enum name (`tool_name`, `PHASE_PRETOOL`)
    // would otherwise be dropped silently and the request judged without it,
    // which for a policy check can turn a DENY into an ALLOW.
    jsonOptions: { ignoreUnknownFields: false },
  });
  router.service(PolicyService, policyEvaluationService(deps));
  router.service(CostService, {});
  router.service(EnvelopeService, {});
  router.service(EventStoreService, {});
  router.service(
    Health,
    healthService(IMPLEMENTED_SERVICES, () => deps.engine.isReady()),
  );
  return router;
}
