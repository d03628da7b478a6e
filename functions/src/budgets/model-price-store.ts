/**
 * The tenant's model price table: its own prices (model_prices) over the built-in
 * defaults (core/budget/prices.ts). Setting a price for a default model overrides it;
 * deleting the tenant's price makes the default apply again.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eq, sql } from "drizzle-orm";
import {
  DEFAULT_MODEL_PRICES,
  FALLBACK_MODEL_PRICE,
  type ModelPrice,
} from "../../../core/budget/prices.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { modelPrices } from "../../../db/schema/index.js";
import {
  type ModelPrice as ModelPriceProto,
  ModelPriceSchema,
} from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import { usdText } from "./budget-input.js";
import { mergedPrices } from "./budget-set-publisher.js";

type PriceRow = typeof modelPrices.$inferSelect;

/** The model_prices.model_id CHECK. */
const MAX_MODEL_ID = 200;

function checkModelId(modelId: string, field: string): string {
  if (modelId.length < 1 || modelId.length > MAX_MODEL_ID || modelId.trim() !== modelId) {
    throw new FulcrumError(
      "Invalid",
      `${field} must be 1..${MAX_MODEL_ID} characters without surrounding spaces`,
      { field },
    );
  }
  return modelId;
}

function rowProto(row: PriceRow): ModelPriceProto {
  return create(ModelPriceSchema, {
    modelId: row.modelId,
    inputUsdPerMillion: Number(row.inputUsdPerMillion),
    outputUsdPerMillion: Number(row.outputUsdPerMillion),
    isDefault: false,
    updatedAt: timestampFromDate(row.updatedAt),
  });
}

function defaultProto(modelId: string, price: ModelPrice): ModelPriceProto {
  return create(ModelPriceSchema, {
    modelId,
    inputUsdPerMillion: price[0],
    outputUsdPerMillion: price[1],
    isDefault: true,
  });
}

/** Every price that applies to the tenant, by model id; and the fallback. */
export async function listPrices(
  tx: Tx,
): Promise<{ prices: ModelPriceProto[]; fallback: ModelPriceProto }> {
  const own = await tx.select().from(modelPrices);
  const byModel = new Map<string, ModelPriceProto>();
  for (const [modelId, price] of Object.entries(DEFAULT_MODEL_PRICES)) {
    byModel.set(modelId, defaultProto(modelId, price));
  }
  for (const row of own) byModel.set(row.modelId, rowProto(row));
  const prices = [...byModel.values()].sort((a, b) => a.modelId.localeCompare(b.modelId));
  return { prices, fallback: defaultProto("", FALLBACK_MODEL_PRICE) };
}

export async function setPrice(
  tx: Tx,
  caller: TenantPrincipal,
  price: ModelPriceProto | undefined,
): Promise<ModelPriceProto> {
  if (!price) throw new FulcrumError("Invalid", "price is required", { field: "price" });
  const modelId = checkModelId(price.modelId, "price.model_id");
  const values = {
    tenantId: caller.tenantId,
    modelId,
    inputUsdPerMillion: usdText("price.input_usd_per_million", price.inputUsdPerMillion),
    outputUsdPerMillion: usdText("price.output_usd_per_million", price.outputUsdPerMillion),
  };
  const [row] = await tx
    .insert(modelPrices)
    .values(values)
    .onConflictDoUpdate({
      target: [modelPrices.tenantId, modelPrices.modelId],
      set: {
        inputUsdPerMillion: values.inputUsdPerMillion,
        outputUsdPerMillion: values.outputUsdPerMillion,
        updatedAt: sql`now()`,
      },
    })
    .returning();
  if (!row) throw new Error("upsert returned no row");
  await recordAudit(tx, caller.tenantId, caller, {
    action: "model_price.set",
    targetType: "model_price",
    targetId: modelId,
    details: {
      input_usd_per_million: row.inputUsdPerMillion,
      output_usd_per_million: row.outputUsdPerMillion,
    },
  });
  return rowProto(row);
}

/** @throws FulcrumError NotFound when the tenant has set no price for the model. */
export async function deletePrice(
  tx: Tx,
  caller: TenantPrincipal,
  rawModelId: string,
): Promise<void> {
  const modelId = checkModelId(rawModelId, "model_id");
  const deleted = await tx
    .delete(modelPrices)
    .where(eq(modelPrices.modelId, modelId))
    .returning({ modelId: modelPrices.modelId });
  if (deleted.length === 0) {
    const hint = Object.hasOwn(DEFAULT_MODEL_PRICES, modelId)
      ? " (the built-in default applies; set a price to override it)"
      : "";
    throw new FulcrumError("NotFound", `no price of this tenant for model ${modelId}${hint}`);
  }
  await recordAudit(tx, caller.tenantId, caller, {
    action: "model_price.deleted",
    targetType: "model_price",
    targetId: modelId,
  });
}

/** The tenant's prices over the defaults, model → [input, output] USD per million. */
export async function ownPrices(tx: Tx): Promise<Record<string, ModelPrice>> {
  return mergedPrices(await tx.select().from(modelPrices));
}
