/**
 * Formats printed `.proto` source with `buf format` and proves the round trip: the text
 * is built with buf and the compiled descriptor must equal the one it was printed from.
 * A printer bug therefore fails loudly instead of vendoring a subtly different schema.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { equals, fromBinary, type Registry, toBinary } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import {
  type DescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { fail } from "./proto-printer-options.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function buf(args: string[], cwd: string): Buffer {
  return execFileSync("buf", args, {
    cwd,
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}` },
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * Returns `raw` formatted by `buf format`, after checking that it compiles to `expected`
 * (`expected.name` is its path in a scratch buf module; its imports must be resolvable
 * there, e.g. well-known types only). `registry` resolves extensions for the comparison.
 */
export function formatAndVerify(
  raw: string,
  expected: FileDescriptorProto,
  registry: Registry,
): string {
  const scratch = mkdtempSync(join(tmpdir(), "fulcrum-proto-printer-"));
  try {
    const path = expected.name;
    mkdirSync(join(scratch, dirname(path)), { recursive: true });
    writeFileSync(join(scratch, "buf.yaml"), "version: v2\n");
    writeFileSync(join(scratch, path), raw);
    const formatted = buf(["format", path], scratch).toString("utf8");
    writeFileSync(join(scratch, path), formatted);
    const image = buf(["build", "--as-file-descriptor-set", "-o", "-"], scratch);
    const set = fromBinary(FileDescriptorSetSchema, image);
    const built =
      set.file.find((f) => f.name === expected.name) ?? fail("vendored file missing from image");
    assertEquivalent(built, expected, registry);
    return formatted;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Compares two descriptors, ignoring what buf fills in or drops (source info, json names). */
function assertEquivalent(
  built: FileDescriptorProto,
  expected: FileDescriptorProto,
  reg: Registry,
) {
  const normalize = (f: FileDescriptorProto) => {
    const copy = fromBinary(FileDescriptorProtoSchema, toBinary(FileDescriptorProtoSchema, f));
    copy.sourceCodeInfo = undefined;
    if (copy.syntax === "proto2") copy.syntax = "";
    const visit = (m: DescriptorProto) => {
      for (const fld of [...m.field, ...m.extension])
        fld.jsonName = fld.jsonName || protoCamelCase(fld.name);
      m.nestedType.forEach(visit);
    };
    copy.messageType.forEach(visit);
    for (const x of copy.extension) x.jsonName = x.jsonName || protoCamelCase(x.name);
    return copy;
  };
  const a = normalize(built);
  const b = normalize(expected);
  if (
    !equals(FileDescriptorProtoSchema, a, b, { registry: reg, extensions: true, unknown: true })
  ) {
    throw new Error(
      `the printed ${basename(expected.name)} does not compile to the package's descriptor`,
    );
  }
}
