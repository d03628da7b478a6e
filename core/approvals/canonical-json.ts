/**
 * Canonical text of a JSON document for the approval hash (arguments-hash.ts), read from
 * the JSON *text* rather than from `JSON.parse`'s value: an approval binds one concrete
 * call, so two documents may hash alike only when they mean the same thing. Going through
 * `JSON.parse` would merge 9007199254740993 with 9007199254740992 (and every number past
 * 2^53 with its neighbours, e.g. an account number), 0.1000000000000000001 with 0.1, 1e400
 * with null, and `{"a":1,"a":2}` with `{"a":2}` (a tool that keeps the first duplicate
 * reads them differently).
 *
 * Rules: whitespace dropped; object keys sorted by code unit, duplicates kept in their
 * order; strings re-encoded by JSON.stringify (so "\u00e9" and "é" are one string); a
 * number is written as JavaScript writes its double (1.0 → 1, 1e2 → 100) when its value
 * as written equals that text's value, else as its exact decimal `<digits>e<exponent>`:
 * such a value is no double's text (else it would have parsed to that double), so the two
 * forms never meet. Iterative, so nesting depth is bounded only by the input size.
 */

/** The canonical text of `text`, or undefined when it is not JSON. */
export function canonicalJsonText(text: string): string | undefined {
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  return new Canonicalizer(text).run();
}

interface Frame {
  kind: "object" | "array";
  parts: string[];
  /** Objects: the keys of `parts`, pending key of the value being read. */
  keys: string[];
}

/** Walks text JSON.parse already accepted, so it only tells tokens apart. */
class Canonicalizer {
  private i = 0;

  constructor(private readonly text: string) {}

  run(): string {
    const stack: Frame[] = [];
    let done: string | undefined;
    for (;;) {
      this.skipSpace();
      const frame = stack[stack.length - 1];
      const c = this.text[this.i];
      if (frame && (c === "}" || c === "]" || c === ",")) {
        this.i++;
        if (c === ",") continue;
        stack.pop();
        done = close(frame);
      } else {
        if (frame?.kind === "object" && frame.keys.length === frame.parts.length) {
          frame.keys.push(this.string());
          this.skipSpace();
          this.i++; // ':'
          continue;
        }
        if (c === "{" || c === "[") {
          this.i++;
          stack.push({ kind: c === "{" ? "object" : "array", parts: [], keys: [] });
          continue;
        }
        done = this.scalar();
      }
      const parent = stack[stack.length - 1];
      if (!parent) return done;
      parent.parts.push(done);
    }
  }

  private scalar(): string {
    const c = this.text[this.i];
    if (c === '"') return JSON.stringify(this.string());
    for (const word of ["true", "false", "null"]) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return word;
      }
    }
    const number = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = this.i;
    const token = number.exec(this.text)?.[0] ?? "";
    this.i += token.length;
    return canonicalNumber(token);
  }

  /** The string token at i (decoded), i moved past it. */
  private string(): string {
    let j = this.i + 1;
    while (this.text[j] !== '"') j += this.text[j] === "\\" ? 2 : 1;
    const value = JSON.parse(this.text.slice(this.i, j + 1)) as string;
    this.i = j + 1;
    return value;
  }

  private skipSpace(): void {
    while (" \t\n\r".includes(this.text[this.i] ?? "x")) this.i++;
  }
}

function close(frame: Frame): string {
  if (frame.kind === "array") return `[${frame.parts.join(",")}]`;
  const order = frame.keys.map((_, n) => n);
  // Stable: duplicate keys keep their order.
  order.sort((a, b) => {
    const [ka, kb] = [frame.keys[a] as string, frame.keys[b] as string];
    return ka < kb ? -1 : ka > kb ? 1 : a - b;
  });
  return `{${order.map((n) => `${JSON.stringify(frame.keys[n])}:${frame.parts[n]}`).join(",")}}`;
}

/** A JSON number token in canonical form (see the module comment). */
export function canonicalNumber(token: string): string {
  const value = Number(token);
  const exact = decimal(token);
  if (Number.isFinite(value) && exact === decimal(String(value))) return JSON.stringify(value);
  return exact;
}

/** The exact value of a decimal token as `[-]<digits>e<exp>`, digits without outer zeros. */
function decimal(token: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(token);
  if (!m) return token;
  const [, sign = "", whole = "", fraction = "", exponent = "0"] = m;
  let digits = (whole + fraction).replace(/^0+/, "");
  if (digits === "") return "0";
  let exp = BigInt(exponent.replace(/^\+/, "")) - BigInt(fraction.length);
  const trimmed = digits.replace(/0+$/, "");
  exp += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${sign}${digits}e${exp}`;
}
