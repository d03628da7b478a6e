/**
 * Syntax checks of the patterns a tenant's rules hold, as the OPA runtimes parse them:
 * content patterns with RE2 (`@bufbuild/re2`, a port of RE2/J: the same syntax as the Go
 * and C++ RE2 the OPA runtimes use, up to corner cases), globs as `glob.match` parses them
 * (character classes are the only syntax it can reject). Used by validateTenantConfig
 * (validate-tenant-config.ts) and the policy compiler's rule conditions.
 *
 * Pure and web-standard.
 */
import { RE2JS } from "@bufbuild/re2";

/** Why RE2 rejects `pattern`, or null when it compiles. */
export function re2Problem(pattern: string): string | null {
  try {
    RE2JS.compile(pattern);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Why glob.match (gobwas/glob, and the wasm runtime's port of it) rejects
 * `pattern`, or null. Only character classes can fail to parse: `[` needs a
 * non-empty class (`[abc]`, `[!abc]`) or a single range `[a-z]` (`[!a-z]`)
 * with lo <= hi, closed by `]`; `\` escapes. Braces and the rest never fail.
 */
export function globProblem(pattern: string): string | null {
  const cs = [...pattern];
  let i = 0;
  while (i < cs.length) {
    const c = cs[i++];
    if (c === "\\") {
      i++;
      continue;
    }
    if (c !== "[") continue;
    if (cs[i] === "!") i++;
    if (i < cs.length && cs[i + 1] === "-") {
      const lo = cs[i] as string;
      const hi = cs[i + 2];
      if (hi === undefined || cs[i + 3] === undefined) return "unexpected end of a character class";
      if (cs[i + 3] !== "]") return "a character class holds one range at most (`[a-z]`)";
      if ((hi.codePointAt(0) as number) < (lo.codePointAt(0) as number)) {
        return `range ${lo}-${hi} is reversed`;
      }
      i += 4;
      continue;
    }
    let text = 0;
    while (i < cs.length && cs[i] !== "]") {
      if (cs[i] === "\\") i++;
      i++;
      text++;
    }
    if (i >= cs.length) return "unclosed character class `[`";
    if (text === 0) return "empty character class";
    i++;
  }
  return null;
}
