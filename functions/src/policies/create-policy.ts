/**
 * CreatePolicy: compile first (outside any transaction: OPA takes a while and a policy
 * that does not compile must write nothing), then one transaction writes the policy, its
 * version 1 and the audit row, and, when the requested status is ACTIVE, activates
 * version 1 as ActivatePolicyVersion would (publishing after the commit).
 */
import { create } from "@bufbuild/protobuf";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { policies } from "../../../db/schema/index.js";
import { PolicyStatus } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import {
  type CreatePolicyRequest,
  type CreatePolicyResponse,
  CreatePolicyResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { type Activation, activateLocked, pointAfterCommit } from "./activation.js";
import { insertVersion, rowMirror } from "./new-version.js";
import { definitionOf, sourceOf } from "./policy-definition.js";
import { toPolicyProto, toVersionProto } from "./policy-rows.js";
import { activationsByVersion, requireOwnTenant } from "./policy-store.js";

/** The AlreadyExists message of a duplicate name (the partial unique index of migration 0003). */
export const duplicateName = (name: string) => ({
  unique: { policies_tenant_id_name_key: `a policy named "${name}" already exists` },
});

export async function createPolicy(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: CreatePolicyRequest,
): Promise<CreatePolicyResponse> {
  const input = req.policy;
  if (!input) throw new FulcrumError("Invalid", "policy is required", { field: "policy" });
  requireOwnTenant(caller.tenantId, input.tenantId, "policy.tenant_id");
  if (
    input.status !== PolicyStatus.UNSPECIFIED &&
    input.status !== PolicyStatus.DRAFT &&
    input.status !== PolicyStatus.ACTIVE
  ) {
    throw new FulcrumError(
      "Invalid",
      "policy.status: a new policy is DRAFT (the default) or ACTIVE",
      {
        field: "policy.status",
      },
    );
  }
  const definition = definitionOf(input);
  const compiled = await deps.compiler.compile(sourceOf(definition.policy));

  const { response, activation } = await inTenant(
    deps.db,
    caller.tenantId,
    async (tx) => {
      const [row] = await tx
        .insert(policies)
        .values({
          tenantId: caller.tenantId,
          name: input.name,
          description: input.description,
          tags: [...input.tags],
          metadata: { ...input.metadata },
          status: "DRAFT",
          ...rowMirror(definition.policy),
          createdBy: caller.userId,
          revision: 1,
        })
        .returning();
      if (!row) throw new FulcrumError("Internal", "insert into policies returned no row");
      const version = await insertVersion(tx, {
        tenantId: caller.tenantId,
        policyId: row.id,
        version: 1,
        definition,
        compiled,
        changeSummary: req.changeSummary,
        createdBy: caller.userId,
      });
      await recordAudit(tx, caller.tenantId, caller, {
        action: "policy.created",
        targetType: "policy",
        targetId: row.id,
        details: {
          name: row.name,
          version: 1,
          sha256: version.sha256,
          wasm_sha256: version.wasmSha256,
        },
      });
      let activation: Activation | undefined;
      if (input.status === PolicyStatus.ACTIVE) {
        activation = await activateLocked(deps, tx, caller, row, version, {
          kind: "activate",
          reason: "",
        });
      }
      const policy = activation?.policy ?? row;
      const activations = activation ? await activationsByVersion(tx, row.id) : new Map();
      return {
        activation,
        response: create(CreatePolicyResponseSchema, {
          policy: toPolicyProto(policy, { definition: version.definition, latestVersion: 1 }),
          version: toVersionProto(policy, version, activations.get(1)),
        }),
      };
    },
    duplicateName(input.name),
  );
  if (activation) {
    await pointAfterCommit(
      deps,
      activation.pointer,
      `policy ${activation.policy.id} with version 1 active`,
      "call ActivatePolicyVersion for version 1 to publish it",
    );
  }
  return response;
}
