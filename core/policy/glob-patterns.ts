/**
 * Glob classification for tool and model lists. glob.match costs ~8 us per
 * call in the wasm runtime, while most configured globs are literals or a
 * single leading/trailing `*`, which string builtins decide exactly; only the
 * rest is left to glob.match (policies/README.md "Globs", lib.rego `matches`).
 */

/** A list of globs, split by how they can be matched; `patterns` keeps list order. */
export interface PreparedGlobs {
  /** All patterns, in list order (the first matching one is named in conditions). */
  patterns: string[];
  /** Literal patterns: value -> index of its first occurrence. */
  exact: Record<string, number>;
  /** `prefix*` (and `*` as the empty prefix): [prefix, index]. */
  prefix: [string, number][];
  /** `*suffix`: [suffix, index]. */
  suffix: [string, number][];
  /** `*infix*`: [infix, index]. */
  infix: [string, number][];
  /** Anything else: [pattern, index], matched with glob.match(pattern, null, value). */
  glob: [string, number][];
}

// Every character glob.match gives a meaning to; a pattern without any is a literal.
const GLOB_META = ["*", "?", "[", "]", "{", "}", ",", "\\", "!"];

const isLiteralGlob = (s: string): boolean => !GLOB_META.some((c) => s.includes(c));

/** Splits globs by the cheapest exact way to match them (see README "Globs"). */
export function prepareGlobs(patterns: readonly string[]): PreparedGlobs {
  const out: PreparedGlobs = {
    patterns: [...patterns],
    exact: {},
    prefix: [],
    suffix: [],
    infix: [],
    glob: [],
  };
  patterns.forEach((p, i) => {
    if (isLiteralGlob(p)) {
      if (!Object.hasOwn(out.exact, p)) out.exact[p] = i;
    } else if (p.endsWith("*") && isLiteralGlob(p.slice(0, -1))) {
      out.prefix.push([p.slice(0, -1), i]);
    } else if (p.startsWith("*") && isLiteralGlob(p.slice(1))) {
      out.suffix.push([p.slice(1), i]);
    } else if (
      p.length >= 2 &&
      p.startsWith("*") &&
      p.endsWith("*") &&
      isLiteralGlob(p.slice(1, -1))
    ) {
      out.infix.push([p.slice(1, -1), i]);
    } else {
      out.glob.push([p, i]);
    }
  });
  return out;
}

/** For optional lists, where the Rego reads `null` as "no restriction". */
export const nonEmptyGlobs = (patterns: readonly string[]): PreparedGlobs | null =>
  patterns.length > 0 ? prepareGlobs(patterns) : null;
