import { describe, expect, it } from "vitest";
import { constantTimeEqual, signWebhook, verifyWebhookSignature } from "./webhook-signature.js";

const secret = "whsec_test-secret";
const body = JSON.stringify({ event_id: "e1", type: "BUDGET_WARNING" });

describe("webhook signature", () => {
  it("is HMAC-SHA256 of `<t>.<body>` keyed by the secret's text", async () => {
    const header = await signWebhook(secret, body, 1_800_000_000);
    // Computed independently: node -e 'crypto.createHmac("sha256", secret).update(t + "." + body)'
    const expected = "e4773a77358216227871b40478933a69e6d92e71cfd6389a588a2b8997085cb9";
    expect(header).toBe(`t=1800000000,v1=${expected}`);
  });

  it("verifies its own signature within the tolerance and refuses everything else", async () => {
    const t = 1_800_000_000;
    const header = await signWebhook(secret, body, t);
    expect(await verifyWebhookSignature(secret, body, header, { nowSeconds: t + 299 })).toEqual({
      ok: true,
      timestampSeconds: t,
    });
    const refuse = async (s: string, b: string, h: string | undefined, now = t) =>
      (await verifyWebhookSignature(s, b, h, { nowSeconds: now })).ok;
    expect(await refuse(secret, body, header, t + 301)).toBe(false);
    expect(await refuse(secret, body, header, t - 301)).toBe(false);
    expect(await refuse("whsec_other", body, header)).toBe(false);
    expect(await refuse(secret, `${body} `, header)).toBe(false);
    expect(await refuse(secret, body, undefined)).toBe(false);
    expect(await refuse(secret, body, header.replace(/t=\d+/, `t=${t + 1}`))).toBe(false);
    expect(await refuse(secret, body, header.replace(/,v1=.*/, ""))).toBe(false);
  });

  it("accepts any of several v1 entries (secret rotation)", async () => {
    const t = 1_800_000_000;
    const header = await signWebhook(secret, body, t);
    const other = (await signWebhook("whsec_old", body, t)).split(",")[1];
    const check = await verifyWebhookSignature(secret, body, `${other},${header}`, {
      nowSeconds: t,
    });
    expect(check.ok).toBe(true);
  });

  it("compares in full", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });
});
