import { createHash } from "node:crypto";

/**
 * Lua script handling for the local Upstash REST server.
 *
 * @upstash/ratelimit's scripts start with `#!lua flags=allow-key-locking`. Upstash accepts
 * that flag; real Redis 7.0 rejects the whole script (`Unexpected flag in script
 * shebang`). So the server strips flags Redis does not know before sending a script on,
 * and remembers which SHA the client computed (of the original text) for the SHA Redis
 * computes (of the rewritten text), so EVALSHA with the client's SHA still finds it.
 */

// The shebang flags Redis 7.0 understands (see `scripts_flags_def` in Redis' source).
const REDIS_FLAGS = new Set([
  "no-writes",
  "allow-oom",
  "allow-stale",
  "no-cluster",
  "allow-cross-slot-keys",
]);

export function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

/**
 * Returns the script with unknown shebang flags (and unknown shebang options) removed,
 * or the script itself when there is nothing to remove. Only the first line changes, so
 * line numbers in Lua errors still match the client's script.
 */
export function rewriteShebang(script: string): string {
  if (!script.startsWith("#!lua")) return script;
  const newline = script.indexOf("\n");
  const firstLine = newline === -1 ? script : script.slice(0, newline);
  const rest = newline === -1 ? "" : script.slice(newline);
  const options = firstLine.slice("#!lua".length).trim().split(/\s+/).filter(Boolean);

  const kept: string[] = [];
  for (const option of options) {
    if (!option.startsWith("flags=")) continue; // Redis 7.0 knows no other option.
    const flags = option
      .slice("flags=".length)
      .split(",")
      .filter((flag) => REDIS_FLAGS.has(flag));
    if (flags.length > 0) kept.push(`flags=${flags.join(",")}`);
  }
  const rewritten = ["#!lua", ...kept].join(" ") + rest;
  return rewritten === script ? script : rewritten;
}

/** One command after script rewriting, with a hook to fix up its reply. */
export interface PreparedCommand {
  args: string[];
  /** Maps Redis' reply back to what the client expects (SCRIPT LOAD's SHA). */
  mapReply?: (reply: unknown) => unknown;
}

/** Keeps the client-SHA → Redis-SHA map for one server. */
export class ScriptRegistry {
  readonly #redisShaFor = new Map<string, string>();

  /** Rewrites EVAL / EVALSHA / SCRIPT LOAD / SCRIPT EXISTS; other commands pass through. */
  prepare(args: string[]): PreparedCommand {
    const [name = "", first, second] = args;
    switch (name) {
      case "EVAL":
      case "EVAL_RO":
        return { args: [name, this.#register(first ?? ""), ...args.slice(2)] };
      case "EVALSHA":
      case "EVALSHA_RO":
        // Unknown SHAs go through unchanged, so Redis answers NOSCRIPT and the client
        // falls back to EVAL, which registers the script.
        return { args: [name, this.#redisSha(first ?? ""), ...args.slice(2)] };
      case "SCRIPT": {
        const sub = (first ?? "").toUpperCase();
        if (sub === "LOAD" && second !== undefined) {
          const clientSha = sha1(second);
          return {
            args: [name, first ?? "", this.#register(second), ...args.slice(3)],
            mapReply: (reply) => (typeof reply === "string" ? clientSha : reply),
          };
        }
        if (sub === "EXISTS") {
          return { args: [name, first ?? "", ...args.slice(2).map((sha) => this.#redisSha(sha))] };
        }
        return { args };
      }
      default:
        return { args };
    }
  }

  #register(script: string): string {
    const rewritten = rewriteShebang(script);
    if (rewritten !== script) this.#redisShaFor.set(sha1(script), sha1(rewritten));
    return rewritten;
  }

  #redisSha(sha: string): string {
    return this.#redisShaFor.get(sha.toLowerCase()) ?? sha;
  }
}
