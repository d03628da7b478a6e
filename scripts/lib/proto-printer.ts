/**
 * Prints a `FileDescriptorProto` back out as `.proto` source: messages, enums, oneofs, maps,
 * reserved ranges, extensions and options (extension values included, resolved through a
 * registry). Source comments are not part of a descriptor, so none are printed. The output
 * is not `buf format`ted; `proto-printer-verify.ts` does that and checks the round trip.
 *
 * Groups and services are not supported (protovalidate, the one user, has neither).
 *
 * @example
 * const text = printProtoFile(file_buf_validate_validate.proto, registry, ["header line"]);
 */
import { isFieldSet, type Registry } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { fail, optionAssignments, str, typeName } from "./proto-printer-options.js";

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

function hasOneof(f: FieldDescriptorProto): boolean {
  return isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex);
}

function indentBlock(text: string, pad: string): string {
  return text
    .split("\n")
    .map((l) => `${pad}${l}`)
    .join("\n");
}

/**
 * Prints `file` as `.proto` source, preceded by `header` as `//` comment lines. `registry`
 * must hold the options messages and every extension whose values should be printed.
 */
export function printProtoFile(
  file: FileDescriptorProto,
  registry: Registry,
  header: string[],
): string {
  if (file.syntax !== "" && file.syntax !== "proto2" && file.syntax !== "proto3") {
    throw new Error(`unsupported syntax ${file.syntax}`);
  }
  const syntax = file.syntax === "proto3" ? "proto3" : "proto2";
  return new Printer(file, syntax, registry).print(header);
}

class Printer {
  private lines: string[] = [];
  constructor(
    private readonly file: FileDescriptorProto,
    private readonly syntax: "proto2" | "proto3",
    private readonly registry: Registry,
  ) {}

  private line(indent: number, text = "") {
    this.lines.push(text === "" ? "" : `${"  ".repeat(indent)}${text}`);
  }

  toString() {
    return `${this.lines
      .join("\n")
      .replace(/\n{3,}/g, "\n\n")
      .trim()}\n`;
  }

  private options(opts: Parameters<typeof optionAssignments>[1]): string[] {
    return optionAssignments(this.registry, opts, this.file.package);
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
    opts.push(...this.options(f.options));
    const text = `${label}${type} ${f.name} = ${f.number}${this.optionSuffix(opts)};`;
    this.statement(indent, text);
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

  private message(indent: number, m: DescriptorProto) {
    this.line(indent, `message ${m.name} {`);
    for (const o of this.options(m.options)) this.statement(indent + 1, `option ${o};`);
    const printedOneofs = new Set<number>();
    for (const f of m.field) {
      if (hasOneof(f) && !f.proto3Optional) {
        if (printedOneofs.has(f.oneofIndex)) continue;
        printedOneofs.add(f.oneofIndex);
        const oneof = m.oneofDecl[f.oneofIndex] ?? fail("bad oneof index");
        this.line(indent + 1, `oneof ${oneof.name} {`);
        for (const o of this.options(oneof.options)) this.statement(indent + 2, `option ${o};`);
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
      const opts = this.options(r.options);
      const range = r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${end}`;
      this.statement(indent + 1, `extensions ${range}${this.optionSuffix(opts)};`);
    }
    this.reserved(indent + 1, m.reservedRange, m.reservedName, true, 536870911);
    this.extensions(indent + 1, m.extension);
    this.line(indent, "}");
    this.line(indent);
  }

  private enum(indent: number, e: EnumDescriptorProto) {
    this.line(indent, `enum ${e.name} {`);
    for (const o of this.options(e.options)) this.statement(indent + 1, `option ${o};`);
    for (const v of e.value) {
      this.statement(
        indent + 1,
        `${v.name} = ${v.number}${this.optionSuffix(this.options(v.options))};`,
      );
    }
    this.reserved(indent + 1, e.reservedRange, e.reservedName, false, 2147483647);
    this.line(indent, "}");
    this.line(indent);
  }

  private extensions(indent: number, exts: FieldDescriptorProto[]) {
    const byExtendee = new Map<string, FieldDescriptorProto[]>();
    for (const x of exts) byExtendee.set(x.extendee, [...(byExtendee.get(x.extendee) ?? []), x]);
    for (const [extendee, fields] of byExtendee) {
      this.line(indent, `extend ${typeName(extendee, this.file.package)} {`);
      for (const f of fields) this.field(indent + 1, f, undefined, false);
      this.line(indent, "}");
      this.line(indent);
    }
  }

  private statement(indent: number, text: string) {
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
    for (const o of this.options(this.file.options)) this.statement(0, `option ${o};`);
    this.line(0);
    this.extensions(0, this.file.extension);
    for (const m of this.file.messageType) this.message(0, m);
    for (const e of this.file.enumType) this.enum(0, e);
    if (this.file.service.length) throw new Error("services are not supported");
    return this.toString();
  }
}
