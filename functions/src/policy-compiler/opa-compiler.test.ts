import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { resolveOpa } from "../../../scripts/opa.js";
import { PolicyCompileError } from "./compile-errors.js";
import type { PolicyCompiler } from "./index.js";
import { createOpaPolicyCompiler } from "./opa-compiler.js";
import { evaluator, testCompiler } from "./test-support.js";

const rego = (regoSource: string) => ({ kind: "rego" as const, regoSource });

async function compileError(source: string): Promise<PolicyCompileError> {
  return compileErrorWith(await testCompiler(), source);
}

async function compileErrorWith(
  compiler: PolicyCompiler,
  source: string,
): Promise<PolicyCompileError> {
  const error = await compiler.compile(rego(source)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PolicyCompileError);
  const e = error as PolicyCompileError;
  expect(e).toBeInstanceOf(FulcrumError);
  expect(e.kind).toBe("Invalid");
  expect(e.field).toBe("rego_source");
  return e;
}

const POLICY = `package fulcrum.policy

import rego.v1

deny contains "deletes are not allowed" if "delete_db" in input.tool_names

deny contains {"message": "too expensive", "rule_id": "cost", "severity": "CRITICAL", "priority": 10} if {
	input.estimated_cost_usd > 1
}

require_approval contains {"message": "needs a human", "rule_name": "n", "severity": "BOGUS", "priority": "high"} if {
	input.phase == "PRE_TOOL_CALL"
}

warn contains 42 if input.model_id == "gpt-4"

audit contains "seen" if true
`;

describe("createOpaPolicyCompiler", () => {
  it("compiles a tenant module to wasm whose entrypoint normalises the sets", async () => {
    const compiler = await testCompiler();
    const started = performance.now();
    const compiled = await compiler.compile(rego(POLICY));
    const ms = performance.now() - started;
    console.log(`compiled in ${ms.toFixed(0)} ms, wasm ${compiled.wasm.length} bytes`);
    expect(compiled.entrypoint).toBe("fulcrum/entry/result");
    expect(compiled.regoSource).toBe(POLICY);
    expect(compiled.wasmSha256).toMatch(/^[0-9a-f]{64}$/);
    const evaluate = await evaluator(compiled);
    expect(evaluate({})).toEqual({
      deny: [],
      require_approval: [],
      warn: [],
      audit: [{ message: "seen" }],
    });
    const all = evaluate({
      tool_names: ["delete_db"],
      estimated_cost_usd: 2,
      phase: "PRE_TOOL_CALL",
      model_id: "gpt-4",
    });
    // Sorted by priority (desc), then value; malformed fields dropped, malformed elements kept.
    expect(all.deny).toEqual([
      { message: "too expensive", rule_id: "cost", severity: "CRITICAL", priority: 10 },
      { message: "deletes are not allowed" },
    ]);
    expect(all.require_approval).toEqual([{ message: "needs a human", rule_name: "n" }]);
    expect(all.warn).toEqual([{ message: "malformed element: 42" }]);
  });

  it("normalises sets that are not sets, and missing sets, without failing", async () => {
    const compiler = await testCompiler();
    const compiled = await compiler.compile(
      rego('package fulcrum.policy\n\ndeny := true\n\nwarn := ["a", {"x": 1}]\n'),
    );
    const evaluate = await evaluator(compiled);
    expect(evaluate({})).toEqual({
      deny: [{ message: "malformed element: true" }],
      require_approval: [],
      warn: [{ message: "a" }, { message: 'malformed element: {"x":1}' }],
      audit: [],
    });
  });

  it("builds deterministically: same source, same wasm bytes and sha256", async () => {
    const compiler = await testCompiler();
    const [a, b] = await Promise.all([
      compiler.compile(rego(POLICY)),
      compiler.compile(rego(POLICY)),
    ]);
    expect(a.wasmSha256).toBe(b.wasmSha256);
    expect(Buffer.from(a.wasm).equals(Buffer.from(b.wasm))).toBe(true);
  });

  it("reports a parse error at its line and column in the tenant's source", async () => {
    const e = await compileError(
      "package fulcrum.policy\n\ndeny contains msg if {\n\tmsg := 1 +\n}\n",
    );
    expect(e.errors).toEqual([
      { line: 5, column: 1, code: "rego_parse_error", message: "unexpected } token" },
    ]);
    expect(e.message).toBe("rego_source: 5:1: rego_parse_error: unexpected } token");
  });

  it("reports unsafe variables and strict-mode errors with their positions", async () => {
    const unsafe = await compileError(
      "package fulcrum.policy\n\ndeny contains msg if {\n\tmsg := foo.bar\n}\n",
    );
    expect(unsafe.errors[0]).toEqual({
      line: 4,
      column: 2,
      code: "rego_unsafe_var_error",
      message: "var foo is unsafe",
    });
    expect(unsafe.message).toContain(
      "rego_source: 4:2: rego_unsafe_var_error: var foo is unsafe; ",
    );
    const strict = await compileError(
      'package fulcrum.policy\n\ndeny contains "x" if {\n\ty := 1\n\tinput.a == 1\n}\n',
    );
    expect(strict.errors).toEqual([
      { line: 4, column: 2, code: "rego_compile_error", message: "assigned var y unused" },
    ]);
  });

  it("refuses builtins the wasm runtime lacks (http.send, time.now_ns)", async () => {
    const http = await compileError(
      'package fulcrum.policy\n\ndeny contains r.body if {\n\tr := http.send({"method": "get", "url": "https://x"})\n}\n',
    );
    expect(http.errors[0]).toMatchObject({ line: 4, code: "rego_type_error" });
    expect(http.message).toContain("undefined function http.send");
    const time = await compileError(
      'package fulcrum.policy\n\ndeny contains "x" if time.now_ns() > 0\n',
    );
    expect(time.message).toBe("rego_source: 3:22: rego_type_error: undefined function time.now_ns");
  });

  it("requires package fulcrum.policy", async () => {
    const other = await compileError(
      '# a comment\npackage fulcrum.other\n\ndeny contains "x" if true\n',
    );
    expect(other.errors).toEqual([
      {
        line: 2,
        column: 1,
        code: "fulcrum_package_error",
        message: "the module must declare package fulcrum.policy, not fulcrum.other",
      },
    ]);
    await compileError('package fulcrum.policy.sub\n\ndeny contains "x" if true\n');
    await compileError("deny contains 1 if true\n");
    // A second package clause is a parse error of the one module.
    const two = await compileError("package fulcrum.policy\n\npackage other\n");
    expect(two.errors[0]?.code).toBe("rego_parse_error");
  });

  it("says in the tenant's terms when deny is a function", async () => {
    const e = await compileError("package fulcrum.policy\n\ndeny(x) := x\n");
    expect(e.message).toBe(
      "rego_source: rego_type_error: deny must be a rule (a set of messages), not a function",
    );
  });

  it("refuses a module over 256 KiB before running OPA", async () => {
    const compiler = await testCompiler();
    const big = `package fulcrum.policy\n\n# ${"x".repeat(262_144)}\n`;
    await expect(compiler.compile(rego(big))).rejects.toThrow(
      /^rego_source: policy is larger than 256 KiB/,
    );
  });

  it("stops OPA at the deadline: Invalid, not worth retrying", async () => {
    const compiler = createOpaPolicyCompiler({ opaBin: await resolveOpa(), timeoutMs: 1 });
    const error = await compiler.compile(rego(POLICY)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).kind).toBe("Invalid");
    expect((error as FulcrumError).retry).toBe(false);
    expect((error as FulcrumError).field).toBe("rego_source");
    expect((error as FulcrumError).message).toBe(
      "rego_source: OPA did not finish compiling the policy within 1 ms: simplify it",
    );
  });

  describe("with a slow stand-in for OPA", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "fulcrum-fake-opa-"));
    });
    afterAll(async () => rm(dir, { recursive: true, force: true }));

    /**
     * An "opa" that logs its start and end to `log` and sleeps `seconds` in between
     * (`execSleep`: becomes the sleep, so the deadline's SIGKILL ends it at once).
     */
    async function fakeOpa(
      seconds: number,
      execSleep = false,
    ): Promise<{ bin: string; log: string }> {
      const log = join(dir, `log-${randomUUID()}`);
      const bin = join(dir, `opa-${randomUUID()}`);
      await writeFile(
        bin,
        `#!/bin/sh\necho start >> ${log}\n${execSleep ? "exec " : ""}sleep ${seconds}\necho end >> ${log}\nexit 1\n`,
      );
      await chmod(bin, 0o755);
      return { bin, log };
    }

    it("reports a deadline overrun as Invalid, naming the deadline", async () => {
      const opa = await fakeOpa(5, true);
      const compiler = createOpaPolicyCompiler({ opaBin: opa.bin, timeoutMs: 200 });
      const error = (await compiler.compile(rego(POLICY)).catch((e: unknown) => e)) as FulcrumError;
      expect([error.kind, error.retry]).toEqual(["Invalid", false]);
      expect(error.message).toBe(
        "rego_source: OPA did not finish compiling the policy within 200 ms: simplify it",
      );
    });

    it("runs at most maxConcurrent OPA processes and refuses beyond maxQueued", async () => {
      const opa = await fakeOpa(0.3);
      const compiler = createOpaPolicyCompiler({
        opaBin: opa.bin,
        maxConcurrent: 2,
        maxQueued: 2,
      });
      const calls = Array.from({ length: 4 }, () =>
        compiler.compile(rego(POLICY)).then(
          () => undefined,
          (e: unknown) => e as FulcrumError,
        ),
      );
      const refused = (await compiler
        .compile(rego(POLICY))
        .catch((e: unknown) => e)) as FulcrumError;
      expect([refused.kind, refused.retry]).toEqual(["RateLimited", true]);
      expect(refused.message).toBe("too many policy compilations in progress; retry shortly");
      // The four admitted ones ran (the stand-in fails them: opa check answered nothing).
      for (const e of await Promise.all(calls)) expect(e?.kind).toBe("Internal");
      let running = 0;
      let most = 0;
      for (const line of (await readFile(opa.log, "utf8")).trim().split("\n")) {
        running += line === "start" ? 1 : -1;
        most = Math.max(most, running);
      }
      expect(most).toBe(2);
    });

    it("checks size and package before waiting for a turn", async () => {
      const opa = await fakeOpa(0.3);
      const compiler = createOpaPolicyCompiler({ opaBin: opa.bin, maxConcurrent: 1, maxQueued: 0 });
      const busy = compiler.compile(rego(POLICY)).catch((e: unknown) => e);
      const e = await compileErrorWith(compiler, "package other\n");
      expect(e.errors[0]?.code).toBe("fulcrum_package_error");
      await busy;
    });
  });

  it("lists at most ten issues in the message and all of them on the error", async () => {
    const body = Array.from({ length: 12 }, (_, i) => `\tv${i} := 1`).join("\n");
    const e = await compileError(`package fulcrum.policy\n\ndeny contains "x" if {\n${body}\n}\n`);
    expect(e.errors).toHaveLength(12);
    expect(e.message.split("; ")).toHaveLength(11);
    expect(e.message).toMatch(/; and 2 more$/);
  });
});
