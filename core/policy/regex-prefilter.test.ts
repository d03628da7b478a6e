/**
 * Soundness of the content prefilter (regex-prefilter.ts): for random
 * patterns of the modelled RE2 subset and texts built from their literals,
 * a text the regex matches must never be rejected by the prefilter (that
 * would turn a DENY into an ALLOW), and an `exact` verdict must agree with
 * the regex both ways.
 *
 * JavaScript's RegExp stands in for RE2. Each generated pattern is rendered
 * twice, as RE2 source (what the analyser sees) and as an equivalent JS
 * source with the `u` flag, spelling out where the two dialects differ:
 * `.` is [^\n] (JS also stops at \r, U+2028, U+2029), \s \d \w are explicit
 * ASCII classes (JS \s is Unicode), \A and \z are lookarounds, (?P<n> is
 * (?<n>, and only syntax characters are escaped for JS. Texts avoid \r
 * (a line break for JS (?m), not for RE2). Checked once against OPA's
 * regex.match on 20,000 generated pairs: the only disagreements were
 * (?i) \b \B \w next to KELVIN SIGN or LONG S, which JS counts as word
 * characters under /ui; with (?i) such texts never take a shortcut.
 */
import { describe, expect, it } from "vitest";
import { genAlt, rng, text, toJs, toRe2 } from "../../test/harness/random-regex.js";
import { analysePattern, prefilterVerdict } from "./regex-prefilter.js";

describe("content prefilter soundness (property)", () => {
  it("never rejects a text the regex matches; exact verdicts agree both ways", () => {
    const r = rng(0x5eed_f17e);
    const PATTERNS = 2500;
    const TEXTS = 10;
    let pairs = 0;
    let matches = 0;
    let nonMatches = 0;
    let pruned = 0;
    let decided = 0;
    const failures: string[] = [];
    for (let p = 0; p < PATTERNS; p++) {
      const gen = genAlt(r, 0, { n: 0 });
      const flags = { i: r.chance(0.4), s: r.chance(0.1), m: r.chance(0.1), U: r.chance(0.05) };
      const prefix = Object.entries(flags)
        .filter(([, on]) => on)
        .map(([f]) => `(?${f})`)
        .join("");
      const re2 = prefix + toRe2(gen, r);
      const js = new RegExp(toJs(gen, flags.s), `u${flags.i ? "i" : ""}${flags.m ? "m" : ""}`);
      const analysis = analysePattern(re2);
      for (let k = 0; k < TEXTS; k++) {
        const t = text(gen, r, flags.i);
        const matched = js.test(t);
        const verdict = prefilterVerdict(analysis, t);
        pairs++;
        if (matched) matches++;
        else {
          nonMatches++;
          if (verdict === "no-match") pruned++;
        }
        if (verdict !== "regex") decided++;
        if ((matched && verdict === "no-match") || (!matched && verdict === "match")) {
          failures.push(`${JSON.stringify(re2)} on ${JSON.stringify(t)}: ${verdict}, JS ${js}`);
        }
      }
    }
    const prunedShare = pruned / nonMatches;
    console.info(
      `prefilter property: ${pairs} pairs, ${matches} matches, ${nonMatches} non-matches, ` +
        `${pruned} pruned (${(100 * prunedShare).toFixed(1)}%), ${decided} decided without regex`,
    );
    expect(failures.slice(0, 10)).toEqual([]);
    expect(pairs).toBeGreaterThanOrEqual(20_000);
    // Not vacuous: both outcomes are well represented and the prefilter prunes.
    expect(matches / pairs).toBeGreaterThan(0.2);
    expect(nonMatches / pairs).toBeGreaterThan(0.2);
    expect(prunedShare).toBeGreaterThan(0.3);
  });
});

describe("content prefilter regressions", () => {
  // RE2 reads a `{` that does not start a valid repetition as a literal, and
  // counts with leading zeros are not valid: `ab{02}` matches the text
  // "ab{02}" (checked with OPA's regex.match, Go and wasm). The analyser used
  // to read {02} as {2}, claim the finite language {"abb"} and so skip the
  // regex for "xab{02}": a DENY turned into an ALLOW. Found by review (JS
  // RegExp shares the misreading, so the property above cannot see it).
  it.each([
    ["ab{02}", "xab{02}"],
    ["x{1,02}", "x{1,02}"],
    ["a{01}b", "a{01}b"],
  ])("gives no shortcut to %s (RE2 matches %s literally)", (regex, text) => {
    const analysis = analysePattern(regex);
    expect(analysis.exact).toBeUndefined();
    expect(prefilterVerdict(analysis, text)).toBe("regex");
  });

  it("still reads well-formed counts, including {0}", () => {
    expect(analysePattern("ab{2}").exact).toEqual(["abb"]);
    expect(analysePattern("ab{0}c").exact).toEqual(["ac"]);
    expect(analysePattern("a{10,}b").need).toEqual(["a", "b"]);
  });
});
