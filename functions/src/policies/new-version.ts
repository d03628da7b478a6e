/**
 * Writing a new, immutable policy version (CreatePolicy's first, UpdatePolicy's next
 * ones), and the copy of versioned fields kept on the policy row so listings and filters
 * need not decode definitions. The row copies the definition the Policy message shows:
 * the active version's (written on activation and rollback), or, while no version was
 * ever activated, the newest's (written with each new version). A version is only ever
 * written compiled: the compiler runs before the transaction, and a policy that does not
 * compile writes nothing.
 */
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type policies, policyVersions } from "../../../db/schema/index.js";
import { type Policy, PolicyScopeSchema } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { CompiledPolicy } from "../policy-compiler/index.js";
import type { Definition } from "./policy-definition.js";
import { enforcementFromProto } from "./policy-lifecycle.js";
import type { VersionWithWasm } from "./policy-store.js";

export interface NewVersion {
  tenantId: string;
  policyId: string;
  version: number;
  definition: Definition;
  compiled: CompiledPolicy;
  changeSummary: string;
  createdBy: string;
}

export async function insertVersion(tx: Tx, v: NewVersion): Promise<VersionWithWasm> {
  const d = v.definition.policy;
  const rules = d.rules.length > 0 ? (v.definition.json.rules as unknown[]) : null;
  const [row] = await tx
    .insert(policyVersions)
    .values({
      tenantId: v.tenantId,
      policyId: v.policyId,
      version: v.version,
      sha256: v.definition.sha256,
      sourceKind: rules ? "rules" : "rego",
      regoSource: v.compiled.regoSource,
      rules,
      compileStatus: "COMPILED",
      wasm: v.compiled.wasm,
      wasmSha256: v.compiled.wasmSha256,
      entrypoint: v.compiled.entrypoint,
      definition: v.definition.json,
      changeSummary: v.changeSummary,
      createdBy: v.createdBy,
    })
    .returning();
  if (!row) throw new Error("insert into policy_versions returned no row");
  return row;
}

/** The policy row's copy of a definition's versioned columns. */
export function rowMirror(definition: Policy): Partial<typeof policies.$inferInsert> {
  return {
    enforcement: enforcementFromProto(definition.enforcement),
    priority: definition.priority,
    scope: definition.scope
      ? toJson(PolicyScopeSchema, definition.scope, { useProtoFieldName: true })
      : {},
    effectiveAt: definition.effectiveAt ? timestampDate(definition.effectiveAt) : null,
    expiresAt: definition.expiresAt ? timestampDate(definition.expiresAt) : null,
  };
}
