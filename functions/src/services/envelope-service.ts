/**
 * EnvelopeService: governed executions (functions/src/envelopes/). Create opens an
 * envelope AUTHORIZED after its checks; UpdateEnvelopeStatus moves it along the
 * lifecycle; every change is an audit event (published after the commit) and rewrites
 * the edge's EnvelopeRecord in Redis. Reading needs `envelopes.read`, changing
 * `envelopes.write` (every role: SDK keys open and close their executions).
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CreateEnvelopeResponseSchema,
  type EnvelopeService,
  GetEnvelopeResponseSchema,
  UpdateEnvelopeStatusResponseSchema,
} from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { createEnvelope } from "../envelopes/create-envelope.js";
import { loadEnvelope, toEnvelopeProto } from "../envelopes/envelope-rows.js";
import { updateEnvelopeStatus } from "../envelopes/update-status.js";

export function envelopeService(deps: FunctionsDeps): ServiceImpl<typeof EnvelopeService> {
  return {
    async createEnvelope(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "envelopes.write");
      const envelope = await createEnvelope(deps, caller, req);
      return create(CreateEnvelopeResponseSchema, { envelope });
    },

    async getEnvelope(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "envelopes.read");
      const row = await inTenant(deps.db, caller.tenantId, (tx) =>
        loadEnvelope(tx, req.envelopeId),
      );
      return create(GetEnvelopeResponseSchema, { envelope: toEnvelopeProto(row, deps.now()) });
    },

    async updateEnvelopeStatus(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "envelopes.write");
      const envelope = await updateEnvelopeStatus(deps, caller, req);
      return create(UpdateEnvelopeStatusResponseSchema, { envelope });
    },
  };
}
