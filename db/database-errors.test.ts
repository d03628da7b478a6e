import { DrizzleQueryError } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { FulcrumError } from "../core/errors/fulcrum-error.js";
import { createLogger } from "../core/logging/logger.js";
import { DatabaseFailure, toDatabaseError } from "./database-errors.js";

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

/** Every message and stack of an error's cause chain, and what the logger writes of it. */
function everythingLogged(error: Error): string {
  const texts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    texts.push(e.message, e.stack ?? "", JSON.stringify(e));
  }
  const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
  try {
    createLogger("test").error("request failed", { error });
    texts.push(...log.mock.calls.map((call) => String(call[0])));
  } finally {
    log.mockRestore();
  }
  return texts.join("\n");
}

describe("toDatabaseError keeps query parameters out of the error chain", () => {
  const keyHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const email = "alice.secret@example.com";
  const query = "insert into users (tenant_id, email, key_hash) values ($1, $2, $3)";
  /** As drizzle raises it: DrizzleQueryError (params in its message) around the driver's. */
  const failed = (driver: Record<string, unknown>) =>
    new DrizzleQueryError(
      query,
      ["00000000-0000-4000-8000-000000000001", email, keyHash],
      Object.assign(new Error(String(driver.message)), { severity: "ERROR", ...driver }),
    );

  it.each([
    [
      "a duplicate (PostgreSQL's detail quotes the value)",
      {
        code: "23505",
        constraint: "users_tenant_id_email_key",
        table: "users",
        message: 'duplicate key value violates unique constraint "users_tenant_id_email_key"',
        detail: `Key (tenant_id, email)=(00000000-0000-4000-8000-000000000001, ${email}) already exists.`,
      },
      "Conflict",
    ],
    [
      "a malformed value (PostgreSQL's message quotes it)",
      { code: "22P02", message: `invalid input syntax for type uuid: "${keyHash}"` },
      "Invalid",
    ],
    [
      "an unexpected failure",
      { code: "42P01", message: `relation "users" does not exist`, routine: "parserOpenTable" },
      "Internal",
    ],
    [
      "a transient failure",
      { code: "40001", message: "could not serialize access due to concurrent update" },
      "Unavailable",
    ],
  ])("%s", (_what, driver, kind) => {
    const original = failed(driver);
    // The premise: drizzle's own message carries the parameters.
    expect(original.message).toContain(keyHash);
    expect(original.message).toContain(email);

    const error = toDatabaseError(original, {
      unique: { users_tenant_id_email_key: "a user with that email already exists" },
    });
    expect(error.kind).toBe(kind);
    const logged = everythingLogged(error);
    expect(logged).not.toContain(keyHash);
    expect(logged).not.toContain(email);
    expect(logged).not.toContain("params:");

    // What is kept to debug with: the statement (placeholders only), SQLSTATE, constraint.
    expect(error.cause).toBeInstanceOf(DatabaseFailure);
    const cause = error.cause as DatabaseFailure;
    expect(cause.code).toBe(driver.code);
    expect(cause.message).toContain(`database error ${driver.code}`);
    expect(cause.message).toContain(`query: ${query}`);
    expect(cause.cause).toBeUndefined();
    if ("constraint" in driver) {
      expect(cause.constraint).toBe(driver.constraint);
      expect(cause.message).toContain(`constraint ${driver.constraint}`);
    }
  });

  it("keeps the message of a connection failure, which carries no parameters", () => {
    const original = new DrizzleQueryError(
      query,
      [email],
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5488"), { code: "ECONNREFUSED" }),
    );
    const error = toDatabaseError(original);
    expect(error.kind).toBe("Unavailable");
    expect(error.cause).toBeInstanceOf(DatabaseFailure);
    expect((error.cause as Error).message).toContain("connect ECONNREFUSED 127.0.0.1:5488");
    expect(everythingLogged(error)).not.toContain(email);
  });

  it("is not misled by a parameter that looks like a network error", () => {
    const original = new DrizzleQueryError(
      query,
      ["websocket connection error"],
      Object.assign(new Error("duplicate key value"), {
        severity: "ERROR",
        code: "23505",
        constraint: "users_tenant_id_email_key",
      }),
    );
    const error = toDatabaseError(original);
    expect(error.kind).toBe("Conflict");
    expect(everythingLogged(error)).not.toContain("websocket connection error");
  });
});
