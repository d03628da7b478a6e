/**
 * WebhookService: the tenant's webhook endpoints, for admins only (webhooks.read /
 * webhooks.write). The notifier (workers/notifier) POSTs the governance events a webhook
 * wants to it, signed with its secret; this service creates and removes endpoints and
 * shows what was delivered.
 *
 * The secret (`whsec_…`) is returned once, by CreateWebhook; reads never select it. A
 * URL must be http(s) and, unless the deployment allows private webhooks (local stacks
 * and tests), must not name a loopback, private or internal host: the notifier calls
 * from inside the platform's network. Creating and deleting are in the audit trail
 * (never with the secret).
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { and, count, desc, eq } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { webhookDeliveries, webhooks } from "../../../db/schema/index.js";
import type { WebhookService } from "../../../proto/gen/fulcrum/notification/v1/webhook_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { afterCursor, cursorColumn, keysetPage } from "../pagination/page-token.js";
import { optionalUuid, requireUuid } from "../tenancy/ids.js";
import {
  checkWebhookUrl,
  deliveryStatusName,
  eventTypeNames,
  newWebhookSecret,
  toDeliveryProto,
  toWebhookProto,
  webhookColumns,
} from "../webhooks/webhook-rows.js";

/** Endpoints per tenant: each governance event is POSTed to every one of them. */
export const MAX_WEBHOOKS_PER_TENANT = 25;

export function webhookService(deps: FunctionsDeps): Partial<ServiceImpl<typeof WebhookService>> {
  return {
    async createWebhook(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "webhooks.write");
      const url = checkWebhookUrl(req.url, deps.allowPrivateWebhooks);
      const eventTypes = eventTypeNames(req.eventTypes);
      const secret = newWebhookSecret();
      return inTenant(deps.db, caller.tenantId, async (tx) => {
        const [existing] = await tx.select({ n: count() }).from(webhooks);
        if ((existing?.n ?? 0) >= MAX_WEBHOOKS_PER_TENANT) {
          throw new FulcrumError(
            "FailedPrecondition",
            `the tenant has ${MAX_WEBHOOKS_PER_TENANT} webhooks, the most it may have: delete one first`,
          );
        }
        const [row] = await tx
          .insert(webhooks)
          .values({
            tenantId: caller.tenantId,
            url,
            eventTypes,
            description: req.description,
            secret,
          })
          .returning(webhookColumns);
        if (!row) throw new Error("insert returned no row");
        await recordAudit(tx, caller.tenantId, caller, {
          action: "webhook.created",
          targetType: "webhook",
          targetId: row.id,
          details: { url: new URL(url).origin, event_types: eventTypes },
        });
        return { webhook: toWebhookProto(row), signingSecret: secret };
      });
    },

    /** Oldest first (a tenant has a handful). */
    async listWebhooks(_req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "webhooks.read");
      const rows = await inTenant(deps.db, caller.tenantId, (tx) =>
        tx.select(webhookColumns).from(webhooks).orderBy(webhooks.createdAt, webhooks.id),
      );
      return { webhooks: rows.map(toWebhookProto) };
    },

    /** Deletes the endpoint and its delivery records; deliveries under way stop. */
    async deleteWebhook(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "webhooks.write");
      const id = requireUuid("webhook_id", req.webhookId);
      await inTenant(deps.db, caller.tenantId, async (tx) => {
        const [row] = await tx
          .delete(webhooks)
          .where(eq(webhooks.id, id))
          .returning({ id: webhooks.id, url: webhooks.url });
        if (!row) throw new FulcrumError("NotFound", `webhook ${id} not found`);
        await recordAudit(tx, caller.tenantId, caller, {
          action: "webhook.deleted",
          targetType: "webhook",
          targetId: id,
          details: { url: new URL(row.url).origin },
        });
      });
      return {};
    },

    /** Newest first; optionally one webhook's, optionally one status. */
    async listWebhookDeliveries(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "webhooks.read");
      const webhookId = optionalUuid("webhook_id", req.webhookId);
      const status = deliveryStatusName(req.status);
      const scope = `webhook_deliveries?webhook=${webhookId ?? ""}&status=${status ?? ""}`;
      const page = await keysetPage(scope, req, (cursor, limit) =>
        inTenant(deps.db, caller.tenantId, (tx) =>
          tx
            .select({
              row: webhookDeliveries,
              cursor: cursorColumn(webhookDeliveries.createdAt),
              id: webhookDeliveries.id,
            })
            .from(webhookDeliveries)
            .where(
              and(
                webhookId ? eq(webhookDeliveries.webhookId, webhookId) : undefined,
                status ? eq(webhookDeliveries.status, status) : undefined,
                afterCursor(webhookDeliveries.createdAt, webhookDeliveries.id, cursor, "desc"),
              ),
            )
            .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
            .limit(limit),
        ),
      );
      return {
        deliveries: page.rows.map((r) => toDeliveryProto(r.row)),
        nextPageToken: page.nextPageToken,
      };
    },
  };
}
