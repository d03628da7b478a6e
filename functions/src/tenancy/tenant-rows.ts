/**
 * Tenant rows ↔ the fulcrum.tenant.v1.Tenant message. The database spells statuses in
 * lower case (`active`), the API as enum values; the mapping lives here only.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { tenants } from "../../../db/schema/index.js";
import {
  type Tenant,
  TenantSchema,
  TenantStatus,
} from "../../../proto/gen/fulcrum/tenant/v1/tenant_pb.js";

export type TenantRow = typeof tenants.$inferSelect;
export type TenantStatusValue = TenantRow["status"];

const TO_PROTO: Record<TenantStatusValue, TenantStatus> = {
  active: TenantStatus.ACTIVE,
  suspended: TenantStatus.SUSPENDED,
};

export function tenantStatusToProto(status: TenantStatusValue): TenantStatus {
  return TO_PROTO[status];
}

/** undefined for UNSPECIFIED (protovalidate refuses undefined numbers). */
export function tenantStatusFromProto(status: TenantStatus): TenantStatusValue | undefined {
  if (status === TenantStatus.ACTIVE) return "active";
  if (status === TenantStatus.SUSPENDED) return "suspended";
  return undefined;
}

export function toTenantProto(row: TenantRow): Tenant {
  return create(TenantSchema, {
    tenantId: row.id,
    name: row.name,
    slug: row.slug,
    status: tenantStatusToProto(row.status),
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
  });
}
