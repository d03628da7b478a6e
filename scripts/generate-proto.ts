/**
 * Protobuf tooling for proto/ (buf workspace: proto/buf.yaml, proto/buf.gen.yaml).
 *
 *   tsx scripts/generate-proto.ts          # buf generate → proto/gen (committed)
 *   tsx scripts/generate-proto.ts --lint   # buf lint + buf format --diff --exit-code
 *   tsx scripts/generate-proto.ts --check  # generate into a temp dir, compare with proto/gen
 *                                          # and check proto/vendor against the installed
 *                                          # @bufbuild/protovalidate; never writes the work tree
 *
 * Everything runs offline with the buf and protoc-gen-es from node_modules/.bin.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderValidateProto, VENDORED_VALIDATE_PROTO } from "./vendor-protovalidate.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = join(root, "proto");
const genDir = join(protoDir, "gen");
const bin = join(root, "node_modules/.bin");
const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };

/** Runs buf in proto/; returns false (after printing buf's output) when it fails. */
function buf(args: string[]): boolean {
  try {
    execFileSync(join(bin, "buf"), args, { cwd: protoDir, env, stdio: "inherit" });
    return true;
  } catch {
    return false;
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

function generate(): number {
  if (!buf(["generate"])) return 1;
  console.log(`generated ${listFiles(genDir).length} files in proto/gen`);
  return 0;
}

function lint(): number {
  let ok = buf(["lint"]);
  if (!buf(["format", "--diff", "--exit-code"])) {
    console.error("proto: formatting differs; run `buf format -w` in proto/");
    ok = false;
  }
  if (ok) console.log("proto: buf lint and buf format are clean");
  return ok ? 0 : 1;
}

function check(): number {
  const scratch = mkdtempSync(join(tmpdir(), "fulcrum-proto-gen-"));
  try {
    // -o is prepended to the template's `out: gen`, so this writes <scratch>/gen only.
    if (!buf(["generate", "-o", scratch])) return 1;
    const fresh = join(scratch, "gen");
    const want = listFiles(fresh);
    const have = listFiles(genDir);
    const drift: string[] = [];
    for (const f of want) {
      if (!have.includes(f)) drift.push(`missing   proto/gen/${f}`);
      else if (!readFileSync(join(fresh, f)).equals(readFileSync(join(genDir, f)))) {
        drift.push(`differs   proto/gen/${f}`);
      }
    }
    for (const f of have) if (!want.includes(f)) drift.push(`extra     proto/gen/${f}`);

    const vendored = join(protoDir, VENDORED_VALIDATE_PROTO);
    const current = existsSync(vendored) ? readFileSync(vendored, "utf8") : "";
    if (current !== renderValidateProto()) {
      drift.push(
        `stale     proto/${VENDORED_VALIDATE_PROTO} (run: tsx scripts/vendor-protovalidate.ts)`,
      );
    }

    if (drift.length > 0) {
      console.error("proto: generated code is out of date; run `npm run generate`:");
      for (const d of drift) console.error(`  ${d}`);
      return 1;
    }
    console.log(`proto: proto/gen is up to date (${want.length} files)`);
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--lint" && a !== "--check");
if (unknown.length > 0) {
  console.error(
    `usage: tsx scripts/generate-proto.ts [--lint | --check] (unknown: ${unknown.join(" ")})`,
  );
  process.exit(2);
}
process.exit(args.includes("--check") ? check() : args.includes("--lint") ? lint() : generate());
