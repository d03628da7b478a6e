/**
 * Content-filter prefilter: what can be decided about a CONTENT_FILTER regex
 * without running regex.match, which dominates the cost of a content scan in
 * the wasm runtime. Computed once per tenant by prepareTenantData and used by
 * rules.rego (`_scan_matches`, `_may_match`):
 *
 * - a finite language of plain strings (`exact`) is decided with contains();
 * - otherwise literals (`need`) and character sets (`need_char`) that every
 *   match contains must all be present before regex.match runs.
 *
 * This is a security-relevant optimisation: claiming "cannot match" for a
 * text RE2 matches turns a DENY into an ALLOW. Every step therefore only ever
 * loses precision: syntax outside the modelled subset (regex-syntax.ts) gets
 * no shortcut, and with case folding only ASCII literals are used, lower-cased,
 * against the lower-cased text (the Rego skips the shortcuts for texts holding
 * a character lower() does not fold like RE2 does). regex-prefilter.test.ts
 * checks the property against JavaScript's RegExp on random patterns.
 */
import { compareCodePoints } from "./code-point-order.js";
import { type Node, parsePattern } from "./regex-syntax.js";

/** Above this many strings a language is not worth enumerating (nor testing). */
const MAX_EXPANSION = 32;

/** The finite set of strings the node matches, or null (infinite, zero-width, too many). */
function expand(node: Node): string[] | null {
  switch (node.k) {
    case "chars":
      return node.chars;
    case "zw":
      // An anchor or \b constrains where a match may be: not a plain substring test.
      return null;
    case "alt": {
      const out = new Set<string>();
      for (const item of node.items) {
        const e = expand(item);
        if (e === null) return null;
        for (const s of e) out.add(s);
        if (out.size > MAX_EXPANSION) return null;
      }
      return [...out];
    }
    case "cat": {
      let acc = [""];
      for (const item of node.items) {
        const e = expand(item);
        if (e === null || acc.length * e.length > MAX_EXPANSION) return null;
        acc = acc.flatMap((a) => e.map((b) => a + b));
      }
      return [...new Set(acc)];
    }
    case "rep": {
      if (node.max === Infinity || node.max > 8) return null;
      const e = expand(node.item);
      if (e === null) return null;
      const out = new Set<string>();
      let level = [""];
      for (let n = 0; n <= node.max; n++) {
        if (n >= node.min) for (const s of level) out.add(s);
        if (n === node.max) break;
        if (level.length * e.length > MAX_EXPANSION) return null;
        level = level.flatMap((a) => e.map((b) => a + b));
      }
      return out.size > MAX_EXPANSION ? null : [...out];
    }
  }
}

/**
 * Necessary conditions: literal runs and single-character sets on every path
 * to a match. Alternatives and optional parts contribute nothing (a path may
 * avoid them); a zero-width assertion breaks a run, since what surrounds it
 * need not be adjacent in a regex that cannot match anyway.
 */
function requirements(node: Node, need: Set<string>, needChar: Map<string, string[]>): void {
  const addChars = (cs: string[]) => {
    if (cs.length > 1 && cs.length <= 10) needChar.set([...cs].sort().join(""), [...cs].sort());
  };
  switch (node.k) {
    case "chars":
      if (node.chars?.length === 1) need.add(node.chars[0] as string);
      else if (node.chars) addChars(node.chars);
      return;
    case "zw":
    case "alt":
      return;
    case "rep":
      if (node.min >= 1) requirements(node.item, need, needChar);
      return;
    case "cat": {
      // Adjacent single characters form one required run.
      let run = "";
      const flush = () => {
        if (run !== "") need.add(run);
        run = "";
      };
      for (const item of node.items) {
        if (item.k === "chars" && item.chars?.length === 1) {
          run += item.chars[0];
        } else {
          flush();
          requirements(item, need, needChar);
        }
      }
      flush();
      return;
    }
  }
}

const isAscii = (s: string): boolean => [...s].every((c) => c.charCodeAt(0) < 128);

/** The prefilter fields of a PreparedContentScan (see its documentation). */
export interface PatternAnalysis {
  fold: boolean;
  exact?: string[];
  need: string[];
  need_char: string[][];
}

/**
 * What can be decided about `regex` (as given to regex.match) without running it.
 * Sound by construction: `exact` only for a finite language of plain strings
 * (no anchors, no \b, no unbounded repetition), `need` / `need_char` only for
 * literals on every path to a match; with case folding, only ASCII strings
 * (lower-cased). Unsupported syntax, and invalid patterns, get no shortcut.
 */
export function analysePattern(regex: string): PatternAnalysis {
  let parsed: { node: Node; fold: boolean };
  try {
    parsed = parsePattern(regex);
  } catch {
    return { fold: false, need: [], need_char: [] };
  }
  const { node, fold } = parsed;
  const norm = (s: string) => (fold ? s.toLowerCase() : s);
  const usable = (s: string) => !fold || isAscii(s);
  const exact = expand(node);
  if (exact?.every(usable)) {
    const lits = [...new Set(exact.map(norm))].sort(compareCodePoints);
    // The empty string matches every text: contains(text, "") holds.
    return { fold, exact: lits.includes("") ? [""] : lits, need: [], need_char: [] };
  }
  const need = new Set<string>();
  const needChar = new Map<string, string[]>();
  requirements(node, need, needChar);
  const needList = [...need]
    .filter(usable)
    .map(norm)
    .filter((s) => s !== "");
  // Keep the longest few literals: enough to filter, cheap to test.
  const longest = [...new Set(needList)]
    .sort((a, b) => b.length - a.length || compareCodePoints(a, b))
    .filter((s, _, all) => !all.some((o) => o !== s && o.includes(s)))
    .slice(0, 3);
  const chars = [...needChar.values()]
    .filter((cs) => cs.every(usable))
    .map((cs) => [...new Set(cs.map(norm))].sort(compareCodePoints));
  return {
    fold,
    need: longest,
    need_char: longest.length > 0 ? [] : chars.slice(0, 1),
  };
}

// Characters lower() does not fold the way RE2's (?i) does (lib.rego `_exotic`):
// U+0130 (lower() gives "i", RE2 does not match it to i), U+212A KELVIN SIGN and
// U+017F LONG S (RE2 matches them to k and s).
const EXOTIC = ["\u0130", "\u212a", "\u017f"];

/**
 * The Rego's use of an analysis for one text (rules.rego `_scan_matches`),
 * for tests: "match" / "no-match" when decided without regex.match, "regex"
 * when regex.match has to decide. lower() and toLowerCase() agree on every
 * character that lower-cases to ASCII except the exotic ones, and only ASCII
 * literals are tested under folding, so toLowerCase() stands in for lower().
 */
export function prefilterVerdict(
  analysis: PatternAnalysis,
  text: string,
): "match" | "no-match" | "regex" {
  const shortcuts = !analysis.fold || !EXOTIC.some((c) => text.includes(c));
  if (!shortcuts) return "regex";
  const scanned = analysis.fold ? text.toLowerCase() : text;
  if (analysis.exact) {
    return analysis.exact.some((l) => scanned.includes(l)) ? "match" : "no-match";
  }
  const may =
    analysis.need.every((l) => scanned.includes(l)) &&
    analysis.need_char.every((cs) => cs.some((c) => scanned.includes(c)));
  return may ? "regex" : "no-match";
}
