/**
 * String order shared by the preparation and the Rego: Rego's `sort` compares
 * UTF-8 bytes, which is code-point order, not JavaScript's UTF-16 code-unit
 * order (they differ for astral characters versus U+E000..U+FFFF).
 */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = (x.value.codePointAt(0) ?? 0) - (y.value.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
}
