/**
 * PolicyService's management methods (policies, versions, activation, dry run) for the
 * management API. Each handler checks the caller's permission, then delegates to
 * functions/src/policies/; every write there is one `inTenant` transaction (so an
 * unreachable database is Unavailable and a failed call changes nothing) followed, when
 * the edge must see the change, by the pointer write in Redis.
 *
 * The evaluation methods are the edge Worker's and answer Unimplemented here, saying so;
 * evaluation history arrives with a later issue (Unimplemented by default). Approvals
 * (List / Get / Update) are functions/src/approvals/: reading needs `approvals.read`,
 * a verdict `approvals.review`.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  GetApprovalResponseSchema,
  ListApprovalsResponseSchema,
  UpdateApprovalResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import { PolicyStatus } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import {
  DeletePolicyResponseSchema,
  GetPolicyResponseSchema,
  ListPoliciesResponseSchema,
  type PolicyService,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  GetPolicyVersionResponseSchema,
  ListPolicyVersionsResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { loadApproval, toApprovalProto } from "../approvals/approval-rows.js";
import { listApprovals } from "../approvals/list-approvals.js";
import { reviewApproval } from "../approvals/review-approval.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { createPolicy } from "../policies/create-policy.js";
import { dryRunPolicy } from "../policies/dry-run.js";
import { listPolicies, listPolicyVersions } from "../policies/policy-list.js";
import { toPolicyProto, toVersionProto } from "../policies/policy-rows.js";
import {
  activationsByVersion,
  loadPolicy,
  loadVersion,
  policyView,
  requireOwnTenant,
  requirePolicyId,
} from "../policies/policy-store.js";
import {
  activatePolicyVersion,
  deletePolicy,
  rollbackPolicy,
} from "../policies/publishing-calls.js";
import { updatePolicy } from "../policies/update-policy.js";

const servedByEdge = (method: string) =>
  new FulcrumError(
    "Unimplemented",
    `${method} is served by the edge Worker (the policy decision endpoint), not by the management API; send it to the edge`,
  );

export function policyManagementService(
  deps: FunctionsDeps,
): Partial<ServiceImpl<typeof PolicyService>> {
  return {
    async createPolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.write");
      // Creating an ACTIVE policy publishes it.
      if (req.policy?.status === PolicyStatus.ACTIVE) requirePermission(caller, "policies.publish");
      return createPolicy(deps, caller, req);
    },

    async getPolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.read");
      const id = requirePolicyId(req.policyId);
      const policy = await inTenant(deps.db, caller.tenantId, async (tx) => {
        const row = await loadPolicy(tx, id);
        return toPolicyProto(row, await policyView(tx, row));
      });
      return create(GetPolicyResponseSchema, { policy });
    },

    async updatePolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.write");
      // A status change publishes or unpublishes.
      if (req.updateMask?.paths.includes("status")) requirePermission(caller, "policies.publish");
      return updatePolicy(deps, caller, req);
    },

    async deletePolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.write");
      // Archiving a published policy unpublishes it: deletePolicy also requires
      // `policies.publish` then (it knows once the row is locked).
      await deletePolicy(deps, caller, req.policyId);
      return create(DeletePolicyResponseSchema);
    },

    async listPolicies(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.read");
      requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
      const page = await inTenant(deps.db, caller.tenantId, (tx) => listPolicies(tx, req));
      return create(ListPoliciesResponseSchema, page);
    },

    async listPolicyVersions(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.read");
      const id = requirePolicyId(req.policyId);
      const page = await inTenant(deps.db, caller.tenantId, (tx) =>
        listPolicyVersions(tx, id, req),
      );
      return create(ListPolicyVersionsResponseSchema, page);
    },

    async getPolicyVersion(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.read");
      const id = requirePolicyId(req.policyId);
      return inTenant(deps.db, caller.tenantId, async (tx) => {
        const policy = await loadPolicy(tx, id, { includeArchived: true });
        const version = await loadVersion(tx, id, req.version);
        const activations = await activationsByVersion(tx, id);
        return create(GetPolicyVersionResponseSchema, {
          version: toVersionProto(policy, version, activations.get(version.version)),
        });
      });
    },

    async activatePolicyVersion(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.publish");
      return activatePolicyVersion(deps, caller, req);
    },

    async rollbackPolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "policies.publish");
      return rollbackPolicy(deps, caller, req);
    },

    async dryRunPolicy(req, ctx) {
      const caller = tenantCaller(ctx);
      // An inline (unsaved) definition is compiled: arbitrary Rego through OPA, so writing
      // policies is required; a stored version only needs reading.
      requirePermission(caller, req.policy ? "policies.write" : "policies.read");
      return dryRunPolicy(deps, caller, req);
    },

    async listApprovals(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "approvals.read");
      requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
      const page = await inTenant(deps.db, caller.tenantId, (tx) =>
        listApprovals(tx, req, deps.now()),
      );
      return create(ListApprovalsResponseSchema, page);
    },

    async getApproval(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "approvals.read");
      const row = await inTenant(deps.db, caller.tenantId, (tx) =>
        loadApproval(tx, req.approvalId),
      );
      return create(GetApprovalResponseSchema, { approval: toApprovalProto(row, deps.now()) });
    },

    async updateApproval(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "approvals.review");
      const approval = await reviewApproval(deps, caller, req);
      return create(UpdateApprovalResponseSchema, { approval });
    },

    evaluatePolicy() {
      throw servedByEdge("EvaluatePolicy");
    },
    evaluatePolicies() {
      throw servedByEdge("EvaluatePolicies");
    },
    checkPolicy() {
      throw servedByEdge("CheckPolicy");
    },
  };
}
