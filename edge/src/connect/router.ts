import type { ConnectRouter } from "@connectrpc/connect";
import { healthService } from "../../../core/connect/health-service.js";
import { createServiceRouter } from "../../../core/connect/service-router.js";
import type { Logger } from "../../../core/logging/logger.js";
import { CostService } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventStoreService } from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import type { EvaluationDeps } from "../services/evaluate.js";
import { policyEvaluationService } from "../services/policy-service.js";

/**
 * The services this edge implements, which Health reports on. The other
 * contract services are registered so their methods answer Unimplemented,
 * but they are not reported as SERVING.
 */
export const IMPLEMENTED_SERVICES = [PolicyService.typeName, Health.typeName] as const;

/**
 * Every Connect service the edge answers. Services whose methods later issues
 * implement are registered empty, so they answer Unimplemented rather than 404.
 */
export function createEdgeRouter(deps: EvaluationDeps, logger: Logger): ConnectRouter {
  const router = createServiceRouter(logger);
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
