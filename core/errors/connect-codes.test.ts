import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { INTERNAL_ERROR_MESSAGE, toConnectError } from "./connect-codes.js";
import { FulcrumError, invalid } from "./fulcrum-error.js";

describe("toConnectError", () => {
  const logged: unknown[] = [];
  const log = (e: unknown) => logged.push(e);

  it("maps domain kinds to their Connect codes and keeps the message", () => {
    const err = toConnectError(invalid("context.tenant_id", "is required"), log);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("context.tenant_id: is required");
    expect(toConnectError(new FulcrumError("NotFound", "no policy p1"), log).code).toBe(
      Code.NotFound,
    );
    expect(toConnectError(new FulcrumError("Unavailable", "down"), log).code).toBe(
      Code.Unavailable,
    );
  });

  it("hides unexpected errors behind a generic Internal and logs the original", () => {
    logged.length = 0;
    const original = new TypeError("cannot read properties of undefined (reading 'x')");
    const err = toConnectError(original, log);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe(INTERNAL_ERROR_MESSAGE);
    expect(err.rawMessage).not.toContain("undefined");
    expect(logged).toEqual([original]);
  });

  it("passes Connect runtime errors through, except internal ones", () => {
    const decode = new ConnectError("cannot decode message", Code.InvalidArgument);
    expect(toConnectError(decode, log)).toBe(decode);
    expect(toConnectError(new ConnectError("boom at x.js:1", Code.Internal), log).rawMessage).toBe(
      INTERNAL_ERROR_MESSAGE,
    );
  });
});
