import { describe, expect, it } from "vitest";
import { rewriteShebang, ScriptRegistry, sha1 } from "./upstash-scripts.js";

describe("rewriteShebang", () => {
  it("drops flags Redis 7.0 rejects and keeps the ones it knows", () => {
    expect(rewriteShebang("#!lua flags=allow-key-locking\nreturn 1")).toBe("#!lua\nreturn 1");
    expect(rewriteShebang("#!lua flags=no-writes,allow-key-locking\nreturn 1")).toBe(
      "#!lua flags=no-writes\nreturn 1",
    );
  });

  it("leaves scripts Redis accepts as they are", () => {
    for (const script of ["return 1", "#!lua flags=no-writes\nreturn 1", "#!lua\nreturn 1"]) {
      expect(rewriteShebang(script)).toBe(script);
    }
  });
});

describe("ScriptRegistry", () => {
  const original = "#!lua flags=allow-key-locking\nreturn 1";
  const rewritten = "#!lua\nreturn 1";

  it("maps the client's SHA to the rewritten script's SHA once it has seen the script", () => {
    const registry = new ScriptRegistry();
    // Unknown SHA: sent unchanged, so Redis answers NOSCRIPT.
    expect(registry.prepare(["EVALSHA", sha1(original), "0"]).args[1]).toBe(sha1(original));
    expect(registry.prepare(["EVAL", original, "0"]).args).toEqual(["EVAL", rewritten, "0"]);
    expect(registry.prepare(["EVALSHA_RO", sha1(original), "0"]).args[1]).toBe(sha1(rewritten));
  });

  it("answers SCRIPT LOAD with the client's SHA", () => {
    const prepared = new ScriptRegistry().prepare(["SCRIPT", "LOAD", original]);
    expect(prepared.args).toEqual(["SCRIPT", "LOAD", rewritten]);
    expect(prepared.mapReply?.(sha1(rewritten))).toBe(sha1(original));
  });
});
