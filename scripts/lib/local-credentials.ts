import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { repoRoot } from "../services/service.js";

/**
 * Secrets of the local stack, generated on its first run and kept in
 * `.fulcrum/local-credentials.json` (git-ignored, mode 0600) so they survive restarts:
 * the platform operator's key (its SHA-256 configures the functions), the token of the
 * local Upstash-REST server, and the demo tenant's first admin key, which the API shows
 * only once.
 */
export interface LocalCredentials {
  platformKey: string;
  redisRestToken: string;
  /** The demo tenant: its first admin's manage key and a check key for the edge. */
  demo?: { tenantId: string; adminKey: string; checkKey?: string };
}

export const LOCAL_CREDENTIALS_FILE = join(repoRoot, ".fulcrum", "local-credentials.json");

export function loadLocalCredentials(): LocalCredentials {
  let text: string;
  try {
    text = readFileSync(LOCAL_CREDENTIALS_FILE, "utf8");
  } catch {
    const fresh: LocalCredentials = {
      // Shaped like every Fulcrum key (`fk_` + 43 base64url), so the same header parsing applies.
      platformKey: `fk_${randomBytes(32).toString("base64url")}`,
      redisRestToken: randomBytes(24).toString("base64url"),
    };
    saveLocalCredentials(fresh);
    return fresh;
  }
  let parsed: Partial<LocalCredentials> | undefined;
  try {
    parsed = JSON.parse(text) as Partial<LocalCredentials>;
  } catch {
    parsed = undefined;
  }
  if (typeof parsed?.platformKey !== "string" || typeof parsed.redisRestToken !== "string") {
    // Regenerating would silently lose the demo admin's key: make the user decide.
    throw new Error(
      `${LOCAL_CREDENTIALS_FILE} is not valid; fix it, or delete it to start with new local credentials`,
    );
  }
  return parsed as LocalCredentials;
}

export function saveLocalCredentials(credentials: LocalCredentials): void {
  mkdirSync(dirname(LOCAL_CREDENTIALS_FILE), { recursive: true });
  writeFileSync(LOCAL_CREDENTIALS_FILE, `${JSON.stringify(credentials, null, 2)}\n`, {
    mode: 0o600,
  });
  // `mode` applies only when the file is created; keep it private when it already existed.
  chmodSync(LOCAL_CREDENTIALS_FILE, 0o600);
}
