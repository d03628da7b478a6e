import { describe, expect, it } from "vitest";
import { globMatch, globMatchAny } from "./glob.js";

// OPA's own glob.match agrees on these (functions/src/policy-compiler/glob-agreement.test.ts).
describe("globMatch", () => {
  it.each([
    ["gpt-*", "gpt-4.1", true],
    ["gpt-*", "gpt", false],
    ["*", "a/b:c.d", true],
    ["*_db", "drop_db", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["[!abc]x", "bx", false],
    ["[a-c]1", "c1", true],
    ["{rm,rmdir}", "rmdir", true],
    ["{rm,rmdir}", "rmd", false],
    ["\\*", "*", true],
    ["a.b", "axb", false],
    ["(x)+", "(x)+", true],
    ["[a", "[a", false],
  ])("%s ~ %s: %s", (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected);
  });

  it("matches any of a list", () => {
    expect(globMatchAny(["read", "delete_*"], "delete_db")).toBe(true);
    expect(globMatchAny([], "x")).toBe(false);
  });
});
