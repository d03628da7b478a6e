/**
 * One HTTP attempt of a delivery: POST the signed body, 2xx within the time limit is
 * success, anything else (another status, a redirect, a timeout, a refused connection)
 * is a failure to retry. Redirects are not followed: a webhook URL is checked when it is
 * created, and a redirect could lead anywhere. Unless private webhooks are allowed, the
 * host's addresses are checked again before every attempt, so a public name that now
 * resolves to an internal address is refused rather than called.
 */
import { lookup } from "node:dns/promises";
import { isPrivateAddress, webhookUrlProblem } from "../../../core/notifications/webhook-url.js";
import type { SignedRequest } from "./sign.js";

export type AttemptResult =
  | { ok: true; statusCode: number }
  | {
      ok: false;
      statusCode: number;
      error: string;
      kind: "http_error" | "network_error" | "refused";
    };

export interface DeliverOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

/** How much of a failed answer's body is kept as the error (it is the receiver's text). */
const ERROR_BODY_CHARS = 200;

export async function deliver(
  url: string,
  request: SignedRequest,
  options: DeliverOptions,
): Promise<AttemptResult> {
  const problem = await addressProblem(url, options.allowPrivate);
  if (problem) return { ok: false, statusCode: 0, error: problem, kind: "refused" };
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const timedOut = (error as Error).name === "TimeoutError";
    return {
      ok: false,
      statusCode: 0,
      kind: "network_error",
      error: timedOut
        ? `no answer within ${options.timeoutMs} ms`
        : `request failed: ${describe(error)}`,
    };
  }
  if (response.status >= 200 && response.status < 300) {
    await response.body?.cancel().catch(() => {});
    return { ok: true, statusCode: response.status };
  }
  const text = await response.text().catch(() => "");
  return {
    ok: false,
    statusCode: response.status,
    kind: "http_error",
    error: `HTTP ${response.status}${text ? `: ${text.slice(0, ERROR_BODY_CHARS)}` : ""}`,
  };
}

async function addressProblem(raw: string, allowPrivate: boolean): Promise<string | undefined> {
  const problem = webhookUrlProblem(raw, allowPrivate);
  if (problem || allowPrivate) return problem;
  const host = new URL(raw).hostname.replace(/^\[|\]$/g, "");
  try {
    const addresses = await lookup(host, { all: true, verbatim: true });
    const internal = addresses.find((a) => isPrivateAddress(a.address));
    if (internal) {
      return `host ${host} resolves to ${internal.address}, a private or internal address`;
    }
  } catch (error) {
    return `host ${host} does not resolve: ${describe(error)}`;
  }
  return undefined;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}
