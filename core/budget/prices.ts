/**
 * Model prices and what a call costs, in integer micro-USD. Prices are USD per million
 * tokens (as providers publish them, numeric(18,6) in PostgreSQL), so tokens × price is
 * already micro-USD: 1 token at $1/M is 1e-6 USD. The product is computed in BigInt on
 * the price's 6 decimals, so 1000 tokens at $0.15/M is exactly 150 micro-USD, never
 * 150.00000000000003 rounded up.
 */

/** [input, output] USD per million tokens. */
export type ModelPrice = readonly [inputPerMillion: number, outputPerMillion: number];

/**
 * Built-in defaults (list prices, USD per million tokens) used when a tenant has set none
 * for a model. A tenant's own prices (model_prices) replace these per model.
 */
export const DEFAULT_MODEL_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  "gpt-4o": [2.5, 10],
  "gpt-4o-mini": [0.15, 0.6],
  "gpt-4.1": [2, 8],
  "gpt-4.1-mini": [0.4, 1.6],
  o3: [2, 8],
  "claude-opus-4": [15, 75],
  "claude-sonnet-4": [3, 15],
  "claude-3-5-haiku": [0.8, 4],
  "gemini-2.5-pro": [1.25, 10],
  "gemini-2.5-flash": [0.3, 2.5],
});

/** For a model neither the tenant nor the defaults price: a mid-to-high tier price. */
export const FALLBACK_MODEL_PRICE: ModelPrice = Object.freeze([3, 15]) as ModelPrice;

/** Largest price accepted (USD per million tokens); anything above is a typo. */
export const MAX_PRICE_PER_MILLION = 1_000_000;

/** Whether `value` is a usable price: two finite, non-negative numbers within range. */
export function isModelPrice(value: unknown): value is ModelPrice {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every(
      (p) => typeof p === "number" && Number.isFinite(p) && p >= 0 && p <= MAX_PRICE_PER_MILLION,
    )
  );
}

/**
 * The price of `model`: an exact entry of `prices`, else the longest entry that is a
 * prefix of it followed by "-" (dated snapshots such as gpt-4o-2024-08-06), else `fallback`.
 */
export function priceFor(
  prices: Readonly<Record<string, ModelPrice>>,
  fallback: ModelPrice,
  model: string,
): ModelPrice {
  const exact = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (exact) return exact;
  let best: string | undefined;
  for (const name of Object.keys(prices)) {
    if (model.startsWith(`${name}-`) && (best === undefined || name.length > best.length)) {
      best = name;
    }
  }
  return (best !== undefined ? prices[best] : undefined) ?? fallback;
}

const MICRO = 1_000_000n;

/** A price per million as an integer count of 1e-6 of it (the price's 6 decimals). */
function scaled(perMillion: number): bigint {
  return BigInt(Math.round(perMillion * 1_000_000));
}

/** ⌈n / MICRO⌉ as a number: a fraction of a micro-USD is charged, never dropped. */
function ceilMicros(n: bigint): number {
  return Number((n + MICRO - 1n) / MICRO);
}

/**
 * What `inputTokens` and `outputTokens` cost at `price`, in micro-USD, rounded up.
 *
 * @example costMicros([2.5, 10], 1000, 500) // 7500 (= $0.0075)
 */
export function costMicros(price: ModelPrice, inputTokens: number, outputTokens: number): number {
  const total = BigInt(inputTokens) * scaled(price[0]) + BigInt(outputTokens) * scaled(price[1]);
  return ceilMicros(total);
}

/**
 * The cost to reserve for `tokens` whose input/output split is not known yet: every token
 * at the dearer of the two prices, so the reservation is never below the settled cost.
 */
export function estimateCostMicros(price: ModelPrice, tokens: number): number {
  return ceilMicros(BigInt(tokens) * scaled(Math.max(price[0], price[1])));
}

/** USD (a request's estimated_cost_usd, a limit's max_cost_usd) as micro-USD, rounded. */
export function usdToMicros(usd: number): number {
  return Math.round(usd * 1_000_000);
}

export function microsToUsd(micros: number): number {
  return micros / 1_000_000;
}
