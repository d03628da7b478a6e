/**
 * The signature on every webhook Fulcrum sends, and the one way to check it: the notifier
 * signs with {@link signWebhook}, and receivers (and the tests) verify with
 * {@link verifyWebhookSignature}, so both sides agree byte for byte.
 *
 * Header: `Fulcrum-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * The timestamp is inside the signed text, so a captured request cannot be replayed
 * later than the tolerance (5 minutes) with a new `t`. The key is the secret's text as
 * shown by CreateWebhook (`whsec_…`, UTF-8), so any HMAC library can verify it.
 * Web-standard only (crypto.subtle).
 *
 * @example
 * const header = await signWebhook(secret, body, Math.floor(Date.now() / 1000));
 * const check = await verifyWebhookSignature(secret, body, header);
 * if (!check.ok) return new Response(check.reason, { status: 400 });
 */

export const SIGNATURE_HEADER = "Fulcrum-Signature";
/** How far a signature's timestamp may be from the receiver's clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

async function hmacHex(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(text));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The `Fulcrum-Signature` value of `body` sent at `timestampSeconds`. */
export async function signWebhook(
  secret: string,
  body: string,
  timestampSeconds: number,
): Promise<string> {
  const t = Math.floor(timestampSeconds);
  return `t=${t},v1=${await hmacHex(secret, `${t}.${body}`)}`;
}

export type SignatureCheck = { ok: true; timestampSeconds: number } | { ok: false; reason: string };

/**
 * Whether `header` is a valid signature of `body` (the raw request body, before any JSON
 * parsing) made with `secret` within `toleranceSeconds` of `nowSeconds`. Several `v1=`
 * entries are accepted (any may match), so a sender may sign with two secrets while one
 * is being rotated. Comparison is constant-time.
 */
export async function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string | null | undefined,
  options: { nowSeconds?: number; toleranceSeconds?: number } = {},
): Promise<SignatureCheck> {
  if (!header) return { ok: false, reason: `${SIGNATURE_HEADER} header is missing` };
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const [key, value] = part.trim().split("=", 2);
    if (key === "t" && value && /^[0-9]{1,12}$/.test(value)) t = Number(value);
    if (key === "v1" && value) signatures.push(value.toLowerCase());
  }
  if (t === undefined) return { ok: false, reason: "signature has no timestamp (t=)" };
  if (signatures.length === 0) return { ok: false, reason: "signature has no v1= entry" };
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - t) > tolerance) {
    return { ok: false, reason: `signature timestamp is more than ${tolerance} s from now` };
  }
  const expected = await hmacHex(secret, `${t}.${body}`);
  // Every candidate is compared in full, so timing says nothing about which one matched.
  let matched = false;
  for (const candidate of signatures) matched = constantTimeEqual(candidate, expected) || matched;
  return matched ? { ok: true, timestampSeconds: t } : { ok: false, reason: "signature mismatch" };
}

/** Equal strings in time that depends only on their length. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
