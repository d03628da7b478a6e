/**
 * `glob.match(pattern, null, value)` in TypeScript: the glob dialect of OPA
 * (gobwas/glob) with no delimiters, so `*` matches any characters including
 * `.`, `/` and `:`. Used for policy scopes (model_ids, tool_names), which are
 * decided outside the wasm.
 *
 * Syntax: `*` any sequence, `?` one character, `[abc]` / `[!abc]` / `[a-z]` /
 * `[!a-z]` a class, `{a,b}` alternatives (nestable), `\x` the character x.
 * A pattern glob.match cannot parse (an unclosed `[`) matches nothing.
 */

// Only syntax characters may be escaped in a `u` RegExp; `-` only inside a class.
const escapeRe = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
const escapeClass = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");

/** Compiles `cs[from..]` until an unmatched `}` or `,` (inside braces); returns [source, next index]. */
function compile(cs: string[], from: number, inBraces: boolean): [string, number] {
  let out = "";
  let i = from;
  while (i < cs.length) {
    const c = cs[i] as string;
    if (inBraces && (c === "}" || c === ",")) return [out, i];
    i++;
    if (c === "\\") {
      if (i < cs.length) out += escapeRe(cs[i++] as string);
    } else if (c === "*") {
      out += "[^]*";
    } else if (c === "?") {
      out += "[^]";
    } else if (c === "[") {
      const close = cs.indexOf("]", i);
      if (close === -1) throw new SyntaxError("unclosed character class");
      let body = cs.slice(i, close);
      const negated = body[0] === "!";
      if (negated) body = body.slice(1);
      if (body.length === 0) throw new SyntaxError("empty character class");
      const set =
        body.length === 3 && body[1] === "-"
          ? `${escapeClass(body[0] as string)}-${escapeClass(body[2] as string)}`
          : body.map(escapeClass).join("");
      out += negated ? `[^${set}]` : `[${set}]`;
      i = close + 1;
    } else if (c === "{") {
      const alternatives: string[] = [];
      for (;;) {
        const [alt, next] = compile(cs, i, true);
        alternatives.push(alt);
        if (next >= cs.length) throw new SyntaxError("unclosed {");
        i = next + 1;
        if (cs[next] === "}") break;
      }
      out += `(?:${alternatives.join("|")})`;
    } else {
      out += escapeRe(c);
    }
  }
  return [out, i];
}

const cache = new Map<string, RegExp | null>();

function regexFor(pattern: string): RegExp | null {
  let re = cache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(`^(?:${compile([...pattern], 0, false)[0]})$`, "u");
    } catch {
      re = null;
    }
    if (cache.size > 1024) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Whether `value` matches the glob `pattern` (no delimiters). */
export function globMatch(pattern: string, value: string): boolean {
  return regexFor(pattern)?.test(value) ?? false;
}

/** Whether `value` matches any of `patterns`. */
export const globMatchAny = (patterns: readonly string[], value: string): boolean =>
  patterns.some((p) => globMatch(p, value));
