import { describe, expect, it } from "vitest";
import { globMatch } from "../../../core/policy-bundle/glob.js";
import { runOpa } from "../../../scripts/opa.js";

const CASES: [string, string][] = [
  ["gpt-*", "gpt-4.1"],
  ["gpt-*", "gpt"],
  ["*", ""],
  ["*", "a/b:c.d"],
  ["delete_*", "delete_db"],
  ["delete_*", "undelete_db"],
  ["*_db", "drop_db"],
  ["a?c", "abc"],
  ["a?c", "ac"],
  ["[abc]x", "bx"],
  ["[!abc]x", "bx"],
  ["[!abc]x", "dx"],
  ["[a-c]1", "c1"],
  ["[a-c]1", "d1"],
  ["{rm,rmdir}", "rmdir"],
  ["{rm,rmdir}", "rmd"],
  ["claude-{3,4}*", "claude-3.5"],
  ["\\*", "*"],
  ["\\*", "x"],
  ["a.b", "a.b"],
  ["a.b", "axb"],
  ["(x)+", "(x)+"],
];

describe("globMatch", () => {
  it("agrees with OPA's glob.match(pattern, null, value)", async () => {
    const { stdout } = await runOpa(
      [
        "eval",
        "--format",
        "json",
        "--stdin-input",
        "[glob.match(c[0], null, c[1]) | some c in input]",
      ],
      { stdin: JSON.stringify(CASES) },
    );
    const opa = (JSON.parse(stdout) as { result: { expressions: { value: boolean[] }[] }[] })
      .result[0]?.expressions[0]?.value;
    expect(CASES.map(([p, v]) => globMatch(p, v))).toEqual(opa);
  });

  it("reads `?` as one character, also a non-ASCII one", () => {
    // Known difference: OPA's Go glob.match (gobwas "row" matcher) measures
    // fixed-length segments in bytes and answers false here.
    expect(globMatch("a?c", "aéc")).toBe(true);
  });

  it("matches nothing with a pattern glob.match cannot parse", () => {
    expect(globMatch("[a", "[a")).toBe(false);
    expect(globMatch("{a", "a")).toBe(false);
  });
});
