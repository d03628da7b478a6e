/**
 * Just enough of a tar reader to take policy.wasm out of the bundle `opa build` writes,
 * so the build needs no tar package or binary. Used by the policy compiler and by
 * scripts/policies/build.ts (moved here from scripts/policies/tar.ts).
 */

const utf8 = new TextDecoder();

/** Minimal ustar reader: returns the named regular file from an uncompressed tar. */
export function extractFromTar(tar: Uint8Array, wanted: string): Uint8Array | undefined {
  const text = (from: number, len: number): string => {
    const slice = tar.subarray(from, from + len);
    const nul = slice.indexOf(0);
    return utf8.decode(nul === -1 ? slice : slice.subarray(0, nul));
  };
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const name = text(offset, 100);
    if (name === "") break; // end-of-archive blocks
    const size = Number.parseInt(text(offset + 124, 12).trim() || "0", 8);
    const type = text(offset + 156, 1);
    const prefix = text(offset + 345, 155);
    const bodyStart = offset + 512;
    let path = longName ?? (prefix ? `${prefix}/${name}` : name);
    longName = undefined;
    if (type === "L") {
      longName = text(bodyStart, size); // GNU long name for the next entry
    } else if (type === "0" || type === "") {
      path = path.replace(/^\.?\//, "");
      if (path === wanted) return tar.subarray(bodyStart, bodyStart + size);
    }
    // 'x'/'g' (PAX) headers and directories are skipped.
    offset = bodyStart + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
