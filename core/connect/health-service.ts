import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "../../proto/gen/grpc/health/v1/health_pb.js";

/**
 * grpc.health.v1.Health, for the edge and the functions. "" names the server as a
 * whole; any service it serves is SERVING while `isReady` says so (the edge: the
 * policy bundle instantiates; the functions: the database answers). Unknown names
 * are NotFound, as the gRPC health protocol specifies. Watch is not offered
 * (Unimplemented, which the protocol allows): neither a Worker nor a Lambda can
 * hold a stream open to push changes.
 */
export function healthService(
  servedServices: readonly string[],
  isReady: () => boolean | Promise<boolean>,
): Partial<ServiceImpl<typeof Health>> {
  const known = new Set(["", ...servedServices]);
  return {
    async check(req) {
      if (!known.has(req.service)) {
        throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      }
      return create(HealthCheckResponseSchema, {
        status: (await isReady())
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.NOT_SERVING,
      });
    },
  };
}
