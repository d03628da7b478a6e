/**
 * Prints protobuf values in `.proto` source syntax: string literals, type names, scalar and
 * enum values, and the options set on an options message (FieldOptions, MessageOptions, ...),
 * extensions included. Used by `proto-printer.ts`.
 */
import {
  type DescExtension,
  getExtension,
  hasExtension,
  type Message,
  type Registry,
} from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";

export function fail(msg: string): never {
  throw new Error(msg);
}

/** A `.proto` string literal (C-style escapes). */
export function str(s: string): string {
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

/** A fully qualified type name, relative to `pkg` when it lives in it. */
export function typeName(fqn: string, pkg: string): string {
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

function extensionsOf(registry: Registry, extendee: string): DescExtension[] {
  const exts: DescExtension[] = [];
  for (const t of registry) {
    if (t.kind === "extension" && t.extendee.typeName === extendee) exts.push(t);
  }
  return exts;
}

/**
 * Prints the options set on an options message (FieldOptions, MessageOptions, ...) as a
 * list of `name = value` assignments, including extensions found in `registry`.
 */
export function optionAssignments(
  registry: Registry,
  opts: Message | undefined,
  pkg: string,
  skip: string[] = [],
): string[] {
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
  for (const ext of extensionsOf(registry, opts.$typeName)) {
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
