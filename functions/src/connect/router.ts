import type { ConnectRouter } from "@connectrpc/connect";
import { healthService } from "../../../core/connect/health-service.js";
import { createServiceRouter } from "../../../core/connect/service-router.js";
import { CostService } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventStoreService } from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { WebhookService } from "../../../proto/gen/fulcrum/notification/v1/webhook_pb.js";
import { PolicyService } from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { ApiKeyService } from "../../../proto/gen/fulcrum/tenant/v1/api_key_service_pb.js";
import { TenantService } from "../../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { UserService } from "../../../proto/gen/fulcrum/tenant/v1/user_service_pb.js";
import { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import { authInterceptor } from "../auth/auth-interceptor.js";
import type { FunctionsDeps } from "../deps.js";
import { managementEventsInterceptor } from "../events/management-events.js";
import { apiKeyService } from "../services/api-key-service.js";
import { costService } from "../services/cost-service.js";
import { envelopeService } from "../services/envelope-service.js";
import { eventStoreService } from "../services/event-store-service.js";
import { policyManagementService } from "../services/policy-management-service.js";
import { tenantService } from "../services/tenant-service.js";
import { userService } from "../services/user-service.js";
import { webhookService } from "../services/webhook-service.js";

/** The services the management API implements, which Health reports on. */
export const MANAGEMENT_SERVICES = [
  TenantService.typeName,
  UserService.typeName,
  ApiKeyService.typeName,
  PolicyService.typeName,
  EventStoreService.typeName,
  EnvelopeService.typeName,
  WebhookService.typeName,
  CostService.typeName,
  Health.typeName,
] as const;

/**
 * The management API's Connect services. PolicyService's evaluation methods are the
 * edge's: here they answer Unimplemented with a message pointing there, as do
 * EventStoreService's PublishEvent / PublishEventBatch.
 *
 * Interceptors, outermost first: errors, auth, the management-event outbox (publishes
 * what committed calls recorded, once the handler is done), protovalidate.
 */
export function createFunctionsRouter(deps: FunctionsDeps): ConnectRouter {
  const router = createServiceRouter(deps.logger, [
    authInterceptor(deps.authenticator),
    managementEventsInterceptor(deps.eventPublisher, deps.metrics, deps.logger),
  ]);
  router.service(TenantService, tenantService(deps));
  router.service(UserService, userService(deps));
  router.service(ApiKeyService, apiKeyService(deps));
  router.service(PolicyService, policyManagementService(deps));
  router.service(EventStoreService, eventStoreService(deps));
  router.service(EnvelopeService, envelopeService(deps));
  router.service(CostService, costService(deps));
  router.service(WebhookService, webhookService(deps));
  router.service(Health, healthService(MANAGEMENT_SERVICES, deps.isReady));
  return router;
}
