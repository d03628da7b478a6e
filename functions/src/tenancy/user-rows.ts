/**
 * User rows ↔ the fulcrum.tenant.v1.User message. Roles are lower-case words in the
 * database (`policy_author`) and enum values in the API; `disabled` is `disabled_at`
 * being set.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { UserRole as RoleValue } from "../../../core/auth/api-key.js";
import type { users } from "../../../db/schema/index.js";
import { type User, UserRole, UserSchema } from "../../../proto/gen/fulcrum/tenant/v1/user_pb.js";

export type UserRow = typeof users.$inferSelect;
export type { RoleValue };

const TO_PROTO: Record<RoleValue, UserRole> = {
  admin: UserRole.ADMIN,
  policy_author: UserRole.POLICY_AUTHOR,
  viewer: UserRole.VIEWER,
};

export function roleToProto(role: RoleValue): UserRole {
  return TO_PROTO[role];
}

/** undefined for UNSPECIFIED. */
export function roleFromProto(role: UserRole): RoleValue | undefined {
  if (role === UserRole.ADMIN) return "admin";
  if (role === UserRole.POLICY_AUTHOR) return "policy_author";
  if (role === UserRole.VIEWER) return "viewer";
  return undefined;
}

export function toUserProto(row: UserRow): User {
  return create(UserSchema, {
    userId: row.id,
    tenantId: row.tenantId,
    email: row.email,
    displayName: row.displayName,
    role: roleToProto(row.role),
    disabled: row.disabledAt !== null,
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
  });
}

/**
 * Emails are stored lower-case (a CHECK), so uniqueness per tenant is case-insensitive.
 * Surrounding spaces are not part of an address.
 */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
