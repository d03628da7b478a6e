import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../../proto/gen/grpc/health/v1/health_pb.js";

/**
 * grpc.health.v1.Health. "" names the server as a whole; any service the edge
 * serves is SERVING once the policy bundle is loaded. Unknown names are
 * NotFound, as the gRPC health protocol specifies. Watch is not offered
 * (Unimplemented, which the protocol allows): a Worker cannot hold a stream
 * open to push changes.
 */
export function healthService(
  servedServices: readonly string[],
  isReady: () => boolean,
): Partial<ServiceImpl<typeof Health>> {
  const known = new Set(["", ...servedServices]);
  return {
    check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return create(HealthCheckResponseSchema, {
        status: isReady()
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.NOT_SERVING,
      });
    },
  };
}
