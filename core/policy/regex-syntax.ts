/**
 * A parser for the subset of RE2 syntax the content prefilter understands
 * (regex-prefilter.ts). It is deliberately conservative: anything it does not
 * model exactly as RE2 does throws {@link Unsupported}, and the caller then
 * gives the pattern no shortcut, so regex.match decides alone. Being wrong in
 * the other direction (accepting syntax with a different meaning in RE2)
 * would let the prefilter skip a regex that matches: a content-filter DENY
 * silently becoming ALLOW.
 *
 * Modelled: literals, escaped ASCII punctuation, \n \t \r \f \v, `.`,
 * non-negated classes with ranges, \d (\s \w \D \S \W as "large sets"),
 * groups (plain, `(?:`, `(?P<name>`), alternation, `? * + {m} {m,} {m,n}`
 * (greedy or lazy), zero-width `^ $ \b \B \A \z`, and leading flag groups
 * `(?i)` `(?s)` `(?m)` `(?U)`.
 */

export type Node =
  | { k: "chars"; chars: string[] | null } // one character from the set; null = large/unknown set
  | { k: "zw" } // zero-width assertion (^ $ \b \B \A \z)
  | { k: "cat"; items: Node[] }
  | { k: "alt"; items: Node[] }
  | { k: "rep"; item: Node; min: number; max: number };

/** Syntax outside the modelled subset (or invalid): no shortcut for this pattern. */
export class Unsupported extends Error {}

class ZeroWidth extends Error {}

// ASCII punctuation whose escape RE2 reads as the character itself.
const PUNCT = new Set("\\.+*?()|[]{}^$-/:;,!\"#%&'<=>@`~ ".split(""));
const CONTROL: Record<string, string> = { n: "\n", t: "\t", r: "\r", f: "\f", v: "\v" };
const DIGITS = "0123456789".split("");
// A repetition count as RE2 accepts it: no leading zeros. RE2 reads a `{` that
// does not start a valid repetition (`a{01}`, `a{,2}`, `a{1, 2}`) as a literal
// brace; we give up on those rather than model it.
const COUNT = "(0|[1-9]\\d{0,2})";
const REPEAT = new RegExp(`^\\{${COUNT}(,(${COUNT})?)?\\}`);

export function parsePattern(pattern: string): { node: Node; fold: boolean } {
  let i = 0;
  let fold = false;
  // Leading flag groups only: (?i) (?s) (?m) (?U) and combinations.
  for (;;) {
    const m = /^\(\?([imsU]+)\)/.exec(pattern.slice(i));
    if (!m?.[1]) break;
    if (m[1].includes("i")) fold = true;
    i += m[0].length;
  }
  const chars = [...pattern.slice(i)];
  let pos = 0;
  const peek = () => chars[pos];

  const parseAlt = (): Node => {
    const items = [parseCat()];
    while (peek() === "|") {
      pos++;
      items.push(parseCat());
    }
    return items.length === 1 ? (items[0] as Node) : { k: "alt", items };
  };
  const parseCat = (): Node => {
    const items: Node[] = [];
    while (pos < chars.length && peek() !== "|" && peek() !== ")") {
      let atom = parseAtom();
      for (;;) {
        const q = parseQuantifier();
        if (!q) break;
        // RE2 rejects `a**` and `^*`: an invalid pattern never matches.
        if (atom.k === "zw" || atom.k === "rep") throw new Unsupported("repeated repetition");
        atom = { k: "rep", item: atom, min: q[0], max: q[1] };
      }
      items.push(atom);
    }
    return { k: "cat", items };
  };
  const parseQuantifier = (): [number, number] | undefined => {
    const c = peek();
    let q: [number, number] | undefined;
    if (c === "*") q = [0, Infinity];
    else if (c === "+") q = [1, Infinity];
    else if (c === "?") q = [0, 1];
    else if (c === "{") {
      const m = REPEAT.exec(chars.slice(pos).join(""));
      if (!m?.[1]) throw new Unsupported("brace");
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === undefined ? Infinity : Number(m[3]);
      if (max < min) throw new Unsupported("bad repetition");
      pos += m[0].length - 1;
      q = [min, max];
    }
    if (!q) return undefined;
    pos++;
    if (peek() === "?") pos++; // lazy: same language
    return q;
  };
  const parseEscape = (inClass: boolean): string[] | null => {
    const c = chars[pos++];
    if (c === undefined) throw new Unsupported("trailing backslash");
    if (c === "d") return DIGITS;
    if (c === "s" || c === "w" || c === "D" || c === "S" || c === "W") return null;
    if (c in CONTROL) return [CONTROL[c] as string];
    if (PUNCT.has(c)) return [c];
    if (!inClass && (c === "b" || c === "B" || c === "A" || c === "z")) throw new ZeroWidth();
    throw new Unsupported(`escape \\${c}`);
  };
  const parseClass = (): string[] | null => {
    // after "["
    if (peek() === "^") throw new Unsupported("negated class");
    const out = new Set<string>();
    let large = false;
    let first = true;
    for (;;) {
      const c = chars[pos];
      if (c === undefined) throw new Unsupported("unterminated class");
      // RE2: a `]` right after `[` is a literal, not the end of the class.
      if (c === "]" && !first) {
        pos++;
        break;
      }
      first = false;
      if (c === "[") throw new Unsupported("nested class syntax");
      let lo: string[] | null;
      pos++;
      if (c === "\\") lo = parseEscape(true);
      else lo = [c];
      if (lo === null) {
        large = true;
        continue;
      }
      if (peek() === "-" && chars[pos + 1] !== "]" && chars[pos + 1] !== undefined) {
        pos++;
        const hc = chars[pos++] as string;
        if (hc === "\\" || hc === "[" || lo.length !== 1) throw new Unsupported("class range");
        const a = (lo[0] as string).codePointAt(0) ?? 0;
        const b = hc.codePointAt(0) ?? 0;
        if (b < a) throw new Unsupported("bad range");
        if (b - a > 64) large = true;
        else for (let x = a; x <= b; x++) out.add(String.fromCodePoint(x));
        continue;
      }
      for (const x of lo) out.add(x);
    }
    return large ? null : [...out];
  };
  const parseAtom = (): Node => {
    const c = chars[pos++];
    if (c === "(") {
      if (peek() === "?") {
        const rest = chars.slice(pos).join("");
        const m = /^\?(:|P<[A-Za-z_][A-Za-z0-9_]*>)/.exec(rest);
        if (!m) throw new Unsupported("group flags");
        pos += m[0].length;
      }
      const inner = parseAlt();
      if (chars[pos++] !== ")") throw new Unsupported("unbalanced group");
      return inner;
    }
    if (c === "[") return { k: "chars", chars: parseClass() };
    if (c === "\\") {
      try {
        return { k: "chars", chars: parseEscape(false) };
      } catch (e) {
        if (e instanceof ZeroWidth) return { k: "zw" };
        throw e;
      }
    }
    if (c === "^" || c === "$") return { k: "zw" };
    if (c === ".") return { k: "chars", chars: null };
    if (
      c === undefined ||
      c === "*" ||
      c === "+" ||
      c === "?" ||
      c === "{" ||
      c === ")" ||
      c === "]"
    )
      throw new Unsupported(`unexpected ${c}`);
    return { k: "chars", chars: [c] };
  };

  const node = parseAlt();
  if (pos !== chars.length) throw new Unsupported("trailing input");
  return { node, fold };
}
