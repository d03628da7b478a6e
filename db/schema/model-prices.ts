import { sql } from "drizzle-orm";
import {
  check,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { tenantIsolation, tenantReference } from "./tenant-rls.js";

/** A tenant's price for a model, over the built-in defaults (core/budget/prices.ts). */
export const modelPrices = pgTable(
  "model_prices",
  {
    /** A surrogate, so a row is named by one uuid like in every tenant table. */
    id: uuid("id").notNull().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    modelId: text("model_id").notNull(),
    /** USD per million input tokens. */
    inputUsdPerMillion: numeric("input_usd_per_million", { precision: 18, scale: 6 }).notNull(),
    /** USD per million output tokens. */
    outputUsdPerMillion: numeric("output_usd_per_million", { precision: 18, scale: 6 }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "model_prices_pkey", columns: [t.tenantId, t.modelId] }),
    unique("model_prices_id_key").on(t.id),
    check("model_prices_model_id_check", sql`length(${t.modelId}) BETWEEN 1 AND 200`),
    check("model_prices_input_usd_per_million_check", sql`${t.inputUsdPerMillion} >= 0`),
    check("model_prices_output_usd_per_million_check", sql`${t.outputUsdPerMillion} >= 0`),
    tenantReference("model_prices", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
