/**
 * Random patterns of the RE2 subset the content prefilter models, rendered as
 * RE2 source and as an equivalent JavaScript RegExp, and random texts around
 * their languages: the generator behind regex-prefilter.test.ts (see there
 * for how the two dialects are kept in agreement). Test support only.
 */

/** mulberry32: small, seeded, reproducible. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const chance = (p: number) => next() < p;
  return { int, pick, chance };
}
export type Rng = ReturnType<typeof rng>;

// A deliberately small alphabet, so that random texts hit the literals.
const LETTERS = [..."abcksxyzABKSZ"];
const DIGITS = [..."0123459"];
const PUNCT = [..."-_.:/ ,;!#'\"<>=@~%&"];
const SYNTAX = new Set([..."\\^$.|?*+()[]{}/"]);
const RE2_SPECIAL = new Set([..."\\^$.|?*+()[]{}"]);
const OTHER = ["é", "É", "ß", "ı", "\n", "\t"];
const EXOTIC = ["\u0130", "\u212a", "\u017f"]; // İ, KELVIN SIGN, LONG S
const FOLDS_TO: Record<string, string> = { s: "\u017f", k: "\u212a", i: "\u0130" };
const TEXT_CHARS = [...LETTERS, ...DIGITS, ...PUNCT, ...OTHER, "(", ")", "[", "{", "}", "*", "+"];

const PERL: Record<string, { js: string; set: string[] }> = {
  d: { js: "0-9", set: [..."0123456789"] },
  w: { js: "0-9A-Za-z_", set: [...LETTERS, ...DIGITS, "_"] },
  s: { js: "\\t\\n\\f\\r ", set: [" ", "\t", "\n"] },
};

const BOUNDED = [
  ["?", 0, 1],
  ["{2}", 2, 2],
  ["{0,2}", 0, 2],
  ["{1,3}", 1, 3],
  ["{0}", 0, 0],
] as const;
const UNBOUNDED = [
  ["*", 0, Infinity],
  ["+", 1, Infinity],
  ["{2,}", 2, Infinity],
] as const;

type Gen =
  | { k: "lit"; c: string }
  | { k: "dot" }
  | { k: "perl"; c: "d" | "w" | "s" }
  | { k: "class"; items: ([string, string] | "d" | "w" | "s")[]; bracketFirst: boolean }
  | { k: "zw"; c: "^" | "$" | "b" | "B" | "A" | "z" }
  | { k: "group"; kind: "cap" | "nc" | "named"; item: Gen }
  | { k: "cat"; items: Gen[] }
  | { k: "alt"; items: Gen[] }
  | { k: "rep"; item: Gen; min: number; max: number; op: string; lazy: boolean };

function genAtom(r: Rng, depth: number, names: { n: number }): Gen {
  const roll = r.int(100);
  if (roll < 45) {
    const c = r.chance(0.05)
      ? r.pick(["é", "\n", "\t"])
      : r.chance(0.15)
        ? r.pick([...RE2_SPECIAL])
        : r.pick([...LETTERS, ...LETTERS, ...DIGITS, ...PUNCT]);
    return { k: "lit", c };
  }
  if (roll < 52) return { k: "dot" };
  if (roll < 60) return { k: "perl", c: r.pick(["d", "w", "s"] as const) };
  if (roll < 72) {
    const items: ([string, string] | "d" | "w" | "s")[] = [];
    for (let i = 0, n = 1 + r.int(4); i < n; i++) {
      if (r.chance(0.1)) items.push(r.pick(["d", "w", "s"] as const));
      else if (r.chance(0.3)) {
        const [lo, hi] = r.pick([
          ["a", "c"],
          ["x", "z"],
          ["A", "Z"],
          ["0", "5"],
          [" ", "~"],
          ["K", "k"],
        ] as const);
        items.push([lo, hi]);
      } else {
        const c = r.pick([...LETTERS, ...DIGITS, "-", "^", "]", "[", "\\", ".", "é"]);
        items.push([c, c]);
      }
    }
    return { k: "class", items, bracketFirst: r.chance(0.1) };
  }
  if (roll < 80) return { k: "zw", c: r.pick(["^", "$", "b", "B", "A", "z"] as const) };
  if (depth > 2) return { k: "lit", c: r.pick(LETTERS) };
  const kind = r.pick(["cap", "nc", "named"] as const);
  if (kind === "named") names.n++;
  return { k: "group", kind, item: genAlt(r, depth + 1, names) };
}

function genCat(r: Rng, depth: number, names: { n: number }): Gen {
  const items: Gen[] = [];
  for (let i = 0, n = r.int(depth === 0 ? 7 : 4) + (depth === 0 ? 1 : 0); i < n; i++) {
    const atom = genAtom(r, depth, names);
    if (atom.k !== "zw" && r.chance(0.3)) {
      // Groups get bounded repetitions only: nested unbounded ones make JS
      // backtrack exponentially ((?:a*)+b), without testing anything new.
      const [op, min, max] = r.pick(atom.k === "group" ? BOUNDED : [...BOUNDED, ...UNBOUNDED]);
      items.push({ k: "rep", item: atom, min, max, op, lazy: r.chance(0.2) });
    } else items.push(atom);
  }
  return { k: "cat", items };
}

export function genAlt(r: Rng, depth: number, names: { n: number }): Gen {
  const n = r.chance(depth === 0 ? 0.2 : 0.35) ? 2 + r.int(2) : 1;
  const items = Array.from({ length: n }, () => genCat(r, depth, names));
  return n === 1 ? (items[0] as Gen) : { k: "alt", items };
}

/** RE2 source; `r` adds optional escapes of punctuation RE2 reads as itself. */
export function toRe2(g: Gen, r: Rng, names = { n: 0 }): string {
  const classChar = (c: string) => ("]\\-[^".includes(c) ? `\\${c}` : c);
  switch (g.k) {
    case "lit":
      if (g.c === "\n") return "\\n";
      if (g.c === "\t") return r.chance(0.5) ? "\\t" : "\t";
      if (RE2_SPECIAL.has(g.c) || (PUNCT.includes(g.c) && r.chance(0.3))) return `\\${g.c}`;
      return g.c;
    case "dot":
      return ".";
    case "perl":
      return `\\${g.c}`;
    case "class": {
      const body = g.items.map((it) =>
        typeof it === "string"
          ? `\\${it}`
          : it[0] === it[1]
            ? classChar(it[0])
            : `${classChar(it[0])}-${classChar(it[1])}`,
      );
      // RE2 reads a `]` right after `[` as a literal.
      return g.bracketFirst ? `[]${body.join("")}]` : `[${body.join("")}]`;
    }
    case "zw":
      return g.c === "^" || g.c === "$" ? g.c : `\\${g.c}`;
    case "group": {
      if (g.kind === "cap") return `(${toRe2(g.item, r, names)})`;
      if (g.kind === "nc") return `(?:${toRe2(g.item, r, names)})`;
      const name = `g${++names.n}`;
      return `(?P<${name}>${toRe2(g.item, r, names)})`;
    }
    case "cat":
      return g.items.map((x) => toRe2(x, r, names)).join("");
    case "alt":
      return g.items.map((x) => toRe2(x, r, names)).join("|");
    case "rep":
      return `${toRe2(g.item, r, names)}${g.op}${g.lazy ? "?" : ""}`;
  }
}

/** The equivalent JS source (flag `u`, plus `s` when dotAll). */
export function toJs(g: Gen, dotAll: boolean, names = { n: 0 }): string {
  const esc = (c: string) =>
    c === "\n" ? "\\n" : c === "\t" ? "\\t" : SYNTAX.has(c) ? `\\${c}` : c;
  const classChar = (c: string) => ("]\\-[^".includes(c) ? `\\${c}` : esc(c));
  switch (g.k) {
    case "lit":
      return esc(g.c);
    case "dot":
      return dotAll ? "[\\s\\S]" : "[^\\n]";
    case "perl":
      return `[${PERL[g.c]?.js}]`;
    case "class": {
      const body = g.items.map((it) =>
        typeof it === "string"
          ? PERL[it]?.js
          : it[0] === it[1]
            ? classChar(it[0])
            : `${classChar(it[0])}-${classChar(it[1])}`,
      );
      return `[${g.bracketFirst ? "\\]" : ""}${body.join("")}]`;
    }
    case "zw":
      return { "^": "^", $: "$", b: "\\b", B: "\\B", A: "(?<![\\s\\S])", z: "(?![\\s\\S])" }[g.c];
    case "group": {
      if (g.kind === "cap") return `(${toJs(g.item, dotAll, names)})`;
      if (g.kind === "nc") return `(?:${toJs(g.item, dotAll, names)})`;
      const name = `g${++names.n}`;
      return `(?<${name}>${toJs(g.item, dotAll, names)})`;
    }
    case "cat":
      return g.items.map((x) => toJs(x, dotAll, names)).join("");
    case "alt":
      return g.items.map((x) => toJs(x, dotAll, names)).join("|");
    case "rep":
      return `${toJs(g.item, dotAll, names)}${g.op}${g.lazy ? "?" : ""}`;
  }
}

/** A random member of the language, ignoring assertions (a near-match then). */
function sample(g: Gen, r: Rng, fold: boolean): string {
  // Under (?i), s and k also match LONG S and KELVIN SIGN, which lower() leaves alone.
  const flip = (c: string) =>
    !fold || r.chance(0.5)
      ? c
      : r.chance(0.1) && FOLDS_TO[c.toLowerCase()]
        ? (FOLDS_TO[c.toLowerCase()] as string)
        : r.chance(0.5)
          ? c.toUpperCase()
          : c.toLowerCase();
  switch (g.k) {
    case "lit":
      return flip(g.c);
    case "dot":
      return r.pick(TEXT_CHARS.filter((c) => c !== "\n"));
    case "perl":
      return r.pick(PERL[g.c]?.set ?? []);
    case "class": {
      const it = r.pick(g.items);
      if (typeof it === "string") return r.pick(PERL[it]?.set ?? []);
      const lo = it[0].codePointAt(0) ?? 0;
      const hi = it[1].codePointAt(0) ?? 0;
      return flip(String.fromCodePoint(lo + r.int(hi - lo + 1)));
    }
    case "zw":
      return "";
    case "group":
      return sample(g.item, r, fold);
    case "cat":
      return g.items.map((x) => sample(x, r, fold)).join("");
    case "alt":
      return sample(r.pick(g.items), r, fold);
    case "rep": {
      const n = g.min + r.int(Math.min(g.max, g.min + 3) - g.min + 1);
      return Array.from({ length: n }, () => sample(g.item, r, fold)).join("");
    }
  }
}

const noise = (r: Rng, n: number) =>
  Array.from({ length: n }, () => (r.chance(0.02) ? r.pick(EXOTIC) : r.pick(TEXT_CHARS))).join("");

/** Texts around the pattern's language: members, mutated members, case variants, noise. */
export function text(g: Gen, r: Rng, fold: boolean): string {
  let t = sample(g, r, fold || r.chance(0.2));
  const mutations = r.int(4);
  for (let i = 0; i < mutations; i++) {
    const at = r.int(t.length + 1);
    const op = r.int(5);
    if (op === 0)
      t = t.slice(0, at) + t.slice(at + 1); // delete
    else if (op === 1)
      t = t.slice(0, at) + noise(r, 1) + t.slice(at); // insert
    else if (op === 2)
      t = t.slice(0, at); // truncate
    else if (op === 3) t = r.chance(0.5) ? t.toUpperCase() : t.toLowerCase();
    else t = t.slice(at) + t.slice(0, at); // rotate
  }
  if (r.chance(0.5)) t = noise(r, r.int(4)) + t + noise(r, r.int(4));
  if (r.chance(0.1)) t = noise(r, r.int(12));
  return t;
}
