import type { ConnectRouter } from "@connectrpc/connect";
import { healthService } from "../../../core/connect/health-service.js";
import { createServiceRouter } from "../../../core/connect/service-router.js";
import { CostService } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventStoreService } from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import { type ApiKeyVerifier, edgeAuthInterceptor } from "../auth/auth-interceptor.js";
import {
  type EventStoreServiceDeps,
  eventPublishService,
} from "../services/event-store-service.js";
import { type PolicyServiceDeps, policyEvaluationService } from "../services/policy-service.js";

/**
 * The services this edge implements, which Health reports on. The other
 * contract services are registered so their methods answer Unimplemented,
 * but they are not reported as SERVING.
 */
export const IMPLEMENTED_SERVICES = [
  PolicyService.typeName,
  EventStoreService.typeName,
  Health.typeName,
] as const;

export interface EdgeRouterDeps extends PolicyServiceDeps, EventStoreServiceDeps {
  keys: ApiKeyVerifier;
  /** Whether the edge can serve decisions (Redis reachable): what Health reports. */
  isReady: () => Promise<boolean>;
}

/**
 * Every Connect service the edge answers, behind API-key authentication (Health
 * excepted). Services whose methods later issues implement are registered empty,
 * so they answer Unimplemented rather than 404.
 */
export function createEdgeRouter(deps: EdgeRouterDeps): ConnectRouter {
  const router = createServiceRouter(deps.logger, [edgeAuthInterceptor(deps.keys)]);
  router.service(PolicyService, policyEvaluationService(deps));
  router.service(CostService, {});
  router.service(EnvelopeService, {});
  router.service(EventStoreService, eventPublishService(deps));
  router.service(Health, healthService(IMPLEMENTED_SERVICES, deps.isReady));
  return router;
}
