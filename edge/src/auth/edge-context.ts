import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";

/** The verified API key of a request, set by the authentication interceptor. */
export const callerKey = createContextKey<ApiKeyRecord | undefined>(undefined, {
  description: "the verified API key of the request",
});

/** Hands work to the runtime to finish after the response (`ctx.waitUntil`). */
export type WaitUntil = (work: Promise<unknown>) => void;

export const waitUntilKey = createContextKey<WaitUntil>(
  (work) => {
    // Outside a Worker request (Node tests) the work still runs; nothing waits for it.
    void work;
  },
  { description: "ExecutionContext.waitUntil of the request" },
);

/** The caller of an evaluation RPC; the interceptor guarantees one exists. */
export function caller(ctx: HandlerContext): ApiKeyRecord {
  const record = ctx.values.get(callerKey);
  if (!record) throw new FulcrumError("Unauthenticated", "this method needs an API key");
  return record;
}
