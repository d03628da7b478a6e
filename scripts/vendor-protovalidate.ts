/**
 * Vendors protovalidate's `buf/validate/validate.proto` into `proto/vendor/`.
 *
 * The BSR module `buf.build/bufbuild/protovalidate` cannot be fetched here, and the
 * `.proto` source is not published on npm. `@bufbuild/protovalidate` does, however,
 * export the complete file descriptor it was generated from. This script prints that
 * descriptor back out as `.proto` source (options and extension values included),
 * formats it with `buf format`, then builds it with buf and checks that the compiled
 * descriptor equals the one exported by the package. Source comments are not part of
 * the embedded descriptor, so they are not reproduced.
 *
 * Because the generated TypeScript imports the package's own descriptor
 * (`rewrite_imports` in proto/buf.gen.yaml), the vendored copy is only used by buf to
 * compile our protos; it must stay in step with the installed package version.
 *
 *   tsx scripts/vendor-protovalidate.ts          # (re)write proto/vendor/buf/validate/validate.proto
 *   tsx scripts/vendor-protovalidate.ts --check  # exit 1 if the vendored file is stale
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  createRegistry,
  type DescExtension,
  equals,
  fromBinary,
  getExtension,
  hasExtension,
  isFieldSet,
  type Message,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { protoCamelCase, type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";

import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = join(root, "proto");
const vendorRel = "vendor/buf/validate/validate.proto";
const target = join(protoDir, vendorRel);

const source = file_buf_validate_validate;
const registry = createRegistry(source, file_google_protobuf_descriptor);
const pkgVersion = (
  JSON.parse(
    readFileSync(join(root, "node_modules/@bufbuild/protovalidate/package.json"), "utf8"),
  ) as {
    version: string;
  }
).version;

// ---------------------------------------------------------------------------
// printing

function str(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function typeName(fqn: string, pkg: string): string {
  const name = fqn.startsWith(".") ? fqn.slice(1) : fqn;
  return pkg && name.startsWith(`${pkg}.`) ? name.slice(pkg.length + 1) : name;
}

/** Prints a scalar / enum value of a reflected field. */
function scalarText(
  field: { fieldKind: string } & Record<string, unknown>,
  value: unknown,
): string {
  if (typeof value === "string") return str(value);
  if (typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (typeof value === "number") {
    if (field.fieldKind === "enum" || (field as { enum?: unknown }).enum) {
      const e = (field as unknown as { enum: { values: { number: number; name: string }[] } }).enum;
      const v = e.values.find((x) => x.number === value);
      if (!v) throw new Error(`unknown enum value ${value}`);
      return v.name;
    }
    if (Number.isNaN(value)) return "nan";
    if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
    return String(value);
  }
  if (value instanceof Uint8Array) {
    return str(String.fromCharCode(...value));
  }
  throw new Error(`cannot print option value ${String(value)}`);
}

/** Text-format body of a message literal (`key: value` lines). */
function messageLiteral(r: ReflectMessage, indent: string): string {
  const lines: string[] = [];
  for (const f of r.sortedFields) {
    if (!r.isSet(f)) continue;
    const emit = (v: unknown) => {
      if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) {
        lines.push(
          `${indent}${f.name}: {\n${messageLiteral(v as ReflectMessage, `${indent}  `)}${indent}}`,
        );
      } else {
        const enumDesc =
          f.fieldKind === "enum"
            ? f.enum
            : f.fieldKind === "list" && f.listKind === "enum"
              ? f.enum
              : undefined;
        lines.push(
          `${indent}${f.name}: ${scalarText({ fieldKind: enumDesc ? "enum" : "scalar", enum: enumDesc }, v)}`,
        );
      }
    };
    switch (f.fieldKind) {
      case "list":
        for (const v of r.get(f)) emit(v);
        break;
      case "map":
        throw new Error(`map fields in option literals are not supported (${f.name})`);
      default:
        emit(r.get(f));
    }
  }
  return lines.map((l) => `${l}\n`).join("");
}

/**
 * Prints the options set on an options message (FieldOptions, MessageOptions, ...) as a
 * list of `name = value` assignments, including extensions found in `registry`.
 */
function optionAssignments(opts: Message | undefined, pkg: string, skip: string[] = []): string[] {
  if (!opts) return [];
  const r = reflect(
    registry.getMessage(opts.$typeName) ?? fail(`no schema for ${opts.$typeName}`),
    opts,
  );
  const out: string[] = [];
  for (const f of r.sortedFields) {
    if (!r.isSet(f) || skip.includes(f.name)) continue;
    if (f.fieldKind === "scalar" || f.fieldKind === "enum") {
      out.push(
        `${f.name} = ${scalarText({ fieldKind: f.fieldKind, enum: f.fieldKind === "enum" ? f.enum : undefined }, r.get(f))}`,
      );
    } else {
      throw new Error(`unsupported standard option ${opts.$typeName}.${f.name}`);
    }
  }
  const known = new Set<number>();
  for (const ext of extensionsOf(opts.$typeName)) {
    if (!hasExtension(opts, ext)) continue;
    known.add(ext.number);
    const name = `(${typeName(ext.typeName, pkg)})`;
    const value = getExtension(opts, ext) as unknown;
    if (ext.fieldKind !== "message") {
      out.push(
        `${name} = ${scalarText({ fieldKind: ext.fieldKind, enum: ext.fieldKind === "enum" ? ext.enum : undefined }, value)}`,
      );
      continue;
    }
    // One assignment per set field, as the upstream source does: (predefined).cel = {...}
    const rv = reflect(ext.message, value as Message);
    for (const f of rv.sortedFields) {
      if (!rv.isSet(f)) continue;
      const values = f.fieldKind === "list" ? [...rv.get(f)] : [rv.get(f)];
      for (const v of values) {
        if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) {
          out.push(`${name}.${f.name} = {\n${messageLiteral(v as ReflectMessage, "  ")}}`);
        } else if (f.fieldKind === "map") {
          throw new Error("map option values are not supported");
        } else {
          const enumDesc =
            f.fieldKind === "enum"
              ? f.enum
              : f.fieldKind === "list" && f.listKind === "enum"
                ? f.enum
                : undefined;
          out.push(
            `${name}.${f.name} = ${scalarText({ fieldKind: enumDesc ? "enum" : "scalar", enum: enumDesc }, v)}`,
          );
        }
      }
    }
  }
  for (const u of opts.$unknown ?? []) {
    if (!known.has(u.no)) throw new Error(`unknown option field ${u.no} on ${opts.$typeName}`);
  }
  return out;
}

function hasOneof(f: FieldDescriptorProto): boolean {
  return isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex);
}

function fail(msg: string): never {
  throw new Error(msg);
}

function extensionsOf(extendee: string): DescExtension[] {
  const exts: DescExtension[] = [];
  for (const t of registry) {
    if (t.kind === "extension" && t.extendee.typeName === extendee) exts.push(t);
  }
  return exts;
}

const scalarNames: Partial<Record<FieldDescriptorProto_Type, string>> = {
  [FieldDescriptorProto_Type.DOUBLE]: "double",
  [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.INT32]: "int32",
  [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32",
  [FieldDescriptorProto_Type.BOOL]: "bool",
  [FieldDescriptorProto_Type.STRING]: "string",
  [FieldDescriptorProto_Type.BYTES]: "bytes",
  [FieldDescriptorProto_Type.UINT32]: "uint32",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32",
  [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
  [FieldDescriptorProto_Type.SINT32]: "sint32",
  [FieldDescriptorProto_Type.SINT64]: "sint64",
};

class Printer {
  private lines: string[] = [];
  constructor(
    private readonly file: FileDescriptorProto,
    private readonly syntax: "proto2" | "proto3",
  ) {}

  line(indent: number, text = "") {
    this.lines.push(text === "" ? "" : `${"  ".repeat(indent)}${text}`);
  }

  toString() {
    return `${this.lines
      .join("\n")
      .replace(/\n{3,}/g, "\n\n")
      .trim()}\n`;
  }

  private fieldType(f: FieldDescriptorProto): string {
    if (f.type === FieldDescriptorProto_Type.MESSAGE || f.type === FieldDescriptorProto_Type.ENUM) {
      return typeName(f.typeName, this.file.package);
    }
    if (f.type === FieldDescriptorProto_Type.GROUP)
      throw new Error(`groups are not supported (${f.name})`);
    return scalarNames[f.type] ?? fail(`unknown field type ${f.type}`);
  }

  private optionSuffix(items: string[]): string {
    if (items.length === 0) return "";
    if (items.length === 1 && !items[0]?.includes("\n")) return ` [${items[0]}]`;
    return ` [\n${items.map((i) => indentBlock(i, "  ")).join(",\n")}\n]`;
  }

  private field(
    indent: number,
    f: FieldDescriptorProto,
    parent: DescriptorProto | undefined,
    inOneof: boolean,
  ) {
    let label = "";
    let type = this.fieldType(f);
    const mapEntry = parent?.nestedType.find(
      (n) =>
        n.options?.mapEntry &&
        `${f.typeName}`.endsWith(`.${n.name}`) &&
        f.label === FieldDescriptorProto_Label.REPEATED,
    );
    if (mapEntry) {
      const [k, v] = mapEntry.field;
      if (!k || !v) throw new Error("bad map entry");
      type = `map<${this.fieldType(k)}, ${this.fieldType(v)}>`;
    } else if (f.label === FieldDescriptorProto_Label.REPEATED) label = "repeated ";
    else if (f.label === FieldDescriptorProto_Label.REQUIRED) label = "required ";
    else if (!inOneof && (this.syntax === "proto2" || f.proto3Optional)) label = "optional ";
    const opts: string[] = [];
    if (isFieldSet(f, FieldDescriptorProtoSchema.field.defaultValue)) {
      opts.push(`default = ${this.defaultLiteral(f)}`);
    }
    if (f.jsonName && f.jsonName !== protoCamelCase(f.name))
      opts.push(`json_name = ${str(f.jsonName)}`);
    opts.push(...optionAssignments(f.options, this.file.package));
    const text = `${label}${type} ${f.name} = ${f.number}${this.optionSuffix(opts)};`;
    for (const l of text.split("\n")) this.line(indent, l);
  }

  private defaultLiteral(f: FieldDescriptorProto): string {
    const d = f.defaultValue ?? "";
    switch (f.type) {
      case FieldDescriptorProto_Type.STRING:
        return str(d);
      case FieldDescriptorProto_Type.BYTES:
        return `"${d}"`; // already C-escaped in the descriptor
      default:
        return d;
    }
  }

  private reserved(
    indent: number,
    ranges: { start: number; end: number }[],
    names: string[],
    exclusiveEnd: boolean,
    max: number,
  ) {
    if (ranges.length) {
      const parts = ranges.map(({ start, end }) => {
        const last = exclusiveEnd ? end - 1 : end;
        if (last === start) return `${start}`;
        return `${start} to ${last >= max ? "max" : last}`;
      });
      this.line(indent, `reserved ${parts.join(", ")};`);
    }
    if (names.length) this.line(indent, `reserved ${names.map(str).join(", ")};`);
  }

  message(indent: number, m: DescriptorProto) {
    this.line(indent, `message ${m.name} {`);
    for (const o of optionAssignments(m.options, this.file.package))
      this.statement(indent + 1, `option ${o};`);
    const printedOneofs = new Set<number>();
    for (const f of m.field) {
      if (hasOneof(f) && !f.proto3Optional) {
        if (printedOneofs.has(f.oneofIndex)) continue;
        printedOneofs.add(f.oneofIndex);
        const oneof = m.oneofDecl[f.oneofIndex] ?? fail("bad oneof index");
        this.line(indent + 1, `oneof ${oneof.name} {`);
        for (const o of optionAssignments(oneof.options, this.file.package))
          this.statement(indent + 2, `option ${o};`);
        for (const of of m.field.filter((x) => hasOneof(x) && x.oneofIndex === f.oneofIndex))
          this.field(indent + 2, of, m, true);
        this.line(indent + 1, "}");
        continue;
      }
      this.field(indent + 1, f, m, false);
    }
    for (const n of m.nestedType) {
      if (n.options?.mapEntry) continue;
      this.message(indent + 1, n);
    }
    for (const e of m.enumType) this.enum(indent + 1, e);
    for (const r of m.extensionRange) {
      const end = r.end - 1 >= 536870911 ? "max" : `${r.end - 1}`;
      const opts = optionAssignments(r.options, this.file.package);
      const range = r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${end}`;
      this.statement(indent + 1, `extensions ${range}${this.optionSuffix(opts)};`);
    }
    this.reserved(indent + 1, m.reservedRange, m.reservedName, true, 536870911);
    this.extensions(indent + 1, m.extension);
    this.line(indent, "}");
    this.line(indent);
  }

  enum(indent: number, e: EnumDescriptorProto) {
    this.line(indent, `enum ${e.name} {`);
    for (const o of optionAssignments(e.options, this.file.package))
      this.statement(indent + 1, `option ${o};`);
    for (const v of e.value) {
      this.statement(
        indent + 1,
        `${v.name} = ${v.number}${this.optionSuffix(optionAssignments(v.options, this.file.package))};`,
      );
    }
    this.reserved(indent + 1, e.reservedRange, e.reservedName, false, 2147483647);
    this.line(indent, "}");
    this.line(indent);
  }

  extensions(indent: number, exts: FieldDescriptorProto[]) {
    const byExtendee = new Map<string, FieldDescriptorProto[]>();
    for (const x of exts) byExtendee.set(x.extendee, [...(byExtendee.get(x.extendee) ?? []), x]);
    for (const [extendee, fields] of byExtendee) {
      this.line(indent, `extend ${typeName(extendee, this.file.package)} {`);
      for (const f of fields) this.field(indent + 1, f, undefined, false);
      this.line(indent, "}");
      this.line(indent);
    }
  }

  statement(indent: number, text: string) {
    for (const l of text.split("\n")) this.line(indent, l);
  }

  print(header: string[]) {
    for (const h of header) this.line(0, h ? `// ${h}` : "//");
    this.line(0);
    this.line(0, `syntax = "${this.syntax}";`);
    this.line(0);
    this.line(0, `package ${this.file.package};`);
    this.line(0);
    for (const d of this.file.dependency) this.line(0, `import ${str(d)};`);
    this.line(0);
    for (const o of optionAssignments(this.file.options, this.file.package))
      this.statement(0, `option ${o};`);
    this.line(0);
    this.extensions(0, this.file.extension);
    for (const m of this.file.messageType) this.message(0, m);
    for (const e of this.file.enumType) this.enum(0, e);
    if (this.file.service.length) throw new Error("services are not supported");
    return this.toString();
  }
}

function indentBlock(text: string, pad: string): string {
  return text
    .split("\n")
    .map((l) => `${pad}${l}`)
    .join("\n");
}

// ---------------------------------------------------------------------------
// build + compare

function buf(args: string[], cwd: string): Buffer {
  return execFileSync("buf", args, {
    cwd,
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH ?? ""}` },
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Prints the descriptor, formats it, builds it with buf and checks it against the package's descriptor. */
function render(): string {
  const file = source.proto;
  if (file.syntax !== "" && file.syntax !== "proto2" && file.syntax !== "proto3") {
    throw new Error(`unsupported syntax ${file.syntax}`);
  }
  const syntax = file.syntax === "proto3" ? "proto3" : "proto2";
  const raw = new Printer(file, syntax).print([
    "Code generated by scripts/vendor-protovalidate.ts. DO NOT EDIT.",
    `Printed from the file descriptor exported by @bufbuild/protovalidate@${pkgVersion}`,
    "(@bufbuild/protovalidate/gen/buf/validate/validate_pb.js); source comments are not",
    "part of that descriptor. Upstream: https://github.com/bufbuild/protovalidate",
    "",
    "Copyright 2023-2026 Buf Technologies, Inc.",
    'Licensed under the Apache License, Version 2.0 (the "License");',
    "you may not use this file except in compliance with the License.",
    "You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0",
  ]);

  const scratch = mkdtempSync(join(tmpdir(), "fulcrum-protovalidate-"));
  try {
    mkdirSync(join(scratch, "buf/validate"), { recursive: true });
    writeFileSync(join(scratch, "buf.yaml"), "version: v2\n");
    writeFileSync(join(scratch, "buf/validate/validate.proto"), raw);
    const formatted = buf(["format", "buf/validate/validate.proto"], scratch).toString("utf8");
    writeFileSync(join(scratch, "buf/validate/validate.proto"), formatted);
    const image = buf(["build", "--as-file-descriptor-set", "-o", "-"], scratch);
    const set = fromBinary(FileDescriptorSetSchema, image);
    const built =
      set.file.find((f) => f.name === file.name) ?? fail("vendored file missing from image");
    assertEquivalent(built, file, registry);
    return formatted;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function assertEquivalent(
  built: FileDescriptorProto,
  expected: FileDescriptorProto,
  reg: Registry,
) {
  const normalize = (f: FileDescriptorProto) => {
    const copy = fromBinary(FileDescriptorProtoSchema, toBin(f));
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
    throw new Error("the printed validate.proto does not compile to the package's descriptor");
  }
}

function toBin(f: FileDescriptorProto): Uint8Array {
  return toBinary(FileDescriptorProtoSchema, f);
}

/** The vendored file's path, relative to proto/. */
export const VENDORED_VALIDATE_PROTO = vendorRel;

/** Renders the vendored validate.proto (verified against the package's descriptor). */
export function renderValidateProto(): string {
  return render();
}

function main() {
  const text = render();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {
      // missing: reported as stale below
    }
    if (current !== text) {
      console.error(`proto/${vendorRel} is stale; run: tsx scripts/vendor-protovalidate.ts`);
      process.exit(1);
    }
    console.log(`proto/${vendorRel} is up to date (@bufbuild/protovalidate@${pkgVersion})`);
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    console.log(`wrote proto/${vendorRel} from @bufbuild/protovalidate@${pkgVersion}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main();
}
