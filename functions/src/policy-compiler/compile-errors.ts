/**
 * Compile errors of a tenant policy: OPA's diagnostics, positioned in the
 * tenant's own source (never in the wrapper module), as one FulcrumError
 * ("Invalid") whose message a person can act on, e.g.
 * `rego_source: 3:9: rego_parse_error: unexpected identifier`.
 */
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { ENTRY_FILE, TENANT_FILE } from "./entry-module.js";

export interface CompileIssue {
  /** 1-based line in the tenant's source; 0 when the issue has no position in it. */
  line: number;
  /** 1-based column; 0 when unknown (OPA reports column 0 at end of input). */
  column: number;
  message: string;
  /** OPA's error code (rego_parse_error, rego_type_error, ...) or a Fulcrum one. */
  code: string;
}

/** At most this many issues are spelled out in the message. */
export const MAX_ISSUES_IN_MESSAGE = 10;

/** A policy that does not compile. `errors` lists every issue; the message the first ten. */
export class PolicyCompileError extends FulcrumError {
  readonly errors: readonly CompileIssue[];

  constructor(field: string, errors: readonly CompileIssue[]) {
    super("Invalid", formatIssues(field, errors), { field });
    this.errors = errors;
  }
}

function formatIssue(issue: CompileIssue): string {
  const at = issue.line > 0 ? `${issue.line}:${issue.column}: ` : "";
  return `${at}${issue.code}: ${issue.message}`;
}

export function formatIssues(field: string, errors: readonly CompileIssue[]): string {
  const shown = errors.slice(0, MAX_ISSUES_IN_MESSAGE).map(formatIssue);
  const more = errors.length - shown.length;
  if (more > 0) shown.push(`and ${more} more`);
  return `${field}: ${shown.join("; ")}`;
}

interface OpaError {
  message?: unknown;
  code?: unknown;
  location?: { file?: unknown; row?: unknown; col?: unknown };
}

const base = (file: string): string => file.replace(/^.*[\\/]/, "");

/** An error OPA reports in the wrapper module, said in the tenant's terms. */
function fromWrapper(e: OpaError): CompileIssue {
  const message = String(e.message ?? "");
  const fn = /^function data\.fulcrum\.policy\.(\w+) used as reference/.exec(message);
  return {
    line: 0,
    column: 0,
    code: String(e.code ?? "rego_compile_error"),
    message: fn
      ? `${fn[1]} must be a rule (a set of messages), not a function`
      : `${message} (in the generated entry module that reads deny, require_approval, warn and audit)`,
  };
}

/**
 * The issues in `opa check --format json` output (`{"errors": [...]}`), or
 * undefined when it is not that document. Issues in the tenant's file come
 * first, in OPA's order; the wrapper's are only listed when the tenant's file
 * has none (they are consequences, e.g. of a recursion through it).
 */
export function parseOpaCheckErrors(output: string): CompileIssue[] | undefined {
  let doc: { errors?: OpaError[] };
  try {
    doc = JSON.parse(output) as { errors?: OpaError[] };
  } catch {
    return undefined;
  }
  if (!doc || !Array.isArray(doc.errors)) return undefined;
  const tenant: CompileIssue[] = [];
  const wrapper: CompileIssue[] = [];
  for (const e of doc.errors) {
    if (e.message === "error limit reached") continue;
    const file = typeof e.location?.file === "string" ? base(e.location.file) : "";
    if (file === ENTRY_FILE) {
      wrapper.push(fromWrapper(e));
      continue;
    }
    tenant.push({
      line: file === TENANT_FILE && typeof e.location?.row === "number" ? e.location.row : 0,
      column: file === TENANT_FILE && typeof e.location?.col === "number" ? e.location.col : 0,
      code: String(e.code ?? "rego_compile_error"),
      message: String(e.message ?? "unknown error"),
    });
  }
  // OPA's order is not stable between runs (e.g. unsafe variables): by position, then text.
  const byPosition = (a: CompileIssue, b: CompileIssue) =>
    a.line - b.line ||
    a.column - b.column ||
    (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
  return (tenant.length > 0 ? tenant : wrapper).sort(byPosition);
}

/**
 * The issues in `opa build`'s text output (`<file>:<row>: <code>: <message>`),
 * for errors `opa check` does not report (the wasm planner's).
 */
export function parseOpaTextErrors(output: string): CompileIssue[] {
  const issues: CompileIssue[] = [];
  for (const m of output.matchAll(/^(?:error: )?([^\s:]+):(\d+): (rego_\w+): (.*)$/gm)) {
    const [, file = "", row = "0", code = "", message = ""] = m;
    const inTenant = base(file) === TENANT_FILE;
    issues.push({ line: inTenant ? Number(row) : 0, column: 0, code, message });
  }
  return issues;
}
