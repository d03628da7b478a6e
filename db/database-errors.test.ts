import { describe, expect, it } from "vitest";
import { FulcrumError } from "../core/errors/fulcrum-error.js";
import { toDatabaseError } from "./database-errors.js";

/** A driver error as the Neon driver raises it, wrapped the way drizzle wraps it. */
function wrapped(fields: Record<string, unknown>): Error {
  const driver = Object.assign(new Error(String(fields.message ?? "driver error")), fields);
  return new Error("Failed query: insert into …", { cause: driver });
}

describe("toDatabaseError", () => {
  it("names the duplicate the caller can act on", () => {
    const error = toDatabaseError(
      wrapped({ code: "23505", constraint: "policies_tenant_id_name_key" }),
      { unique: { policies_tenant_id_name_key: 'a policy named "p" already exists' } },
    );
    expect(error.kind).toBe("Conflict");
    expect(error.message).toBe('a policy named "p" already exists');
  });

  it("keeps a generic message for unexpected duplicates and foreign keys", () => {
    expect(toDatabaseError(wrapped({ code: "23505", constraint: "other" })).message).toBe(
      "the resource already exists",
    );
    expect(toDatabaseError(wrapped({ code: "23503", constraint: "fk" })).kind).toBe("Internal");
    expect(
      toDatabaseError(wrapped({ code: "23503", constraint: "fk" }), {
        foreignKey: { fk: "user u not found" },
      }).kind,
    ).toBe("NotFound");
  });

  it.each([
    [
      "a refused connection",
      { code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:5488" },
    ],
    ["a connect timeout", { message: "timeout exceeded when trying to connect" }],
    ["a terminated connection", { message: "Connection terminated unexpectedly" }],
    ["an admin shutdown", { code: "57P01", message: "terminating connection" }],
    ["a serialization failure", { code: "40001", message: "could not serialize access" }],
    ["too many connections", { code: "53300", message: "too many clients" }],
  ])("makes %s Unavailable and retryable", (_what, fields) => {
    const error = toDatabaseError(wrapped(fields));
    expect(error.kind).toBe("Unavailable");
    expect(error.retry).toBe(true);
    expect(error.message).not.toMatch(/127\.0\.0\.1|ECONN/);
  });

  it("passes domain errors through and hides everything else as Internal", () => {
    const domain = new FulcrumError("NotFound", "policy p not found");
    expect(toDatabaseError(domain)).toBe(domain);
    const internal = toDatabaseError(
      wrapped({ code: "42P01", message: "relation x does not exist" }),
    );
    expect(internal.kind).toBe("Internal");
    expect(internal.message).not.toContain("relation");
  });
});
