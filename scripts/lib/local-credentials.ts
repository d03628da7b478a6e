import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
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
  demo?: { tenantId: string; adminKey: string };
}

export const LOCAL_CREDENTIALS_FILE = join(repoRoot, ".fulcrum", "local-credentials.json");

export function loadLocalCredentials(): LocalCredentials {
  try {
    return JSON.parse(readFileSync(LOCAL_CREDENTIALS_FILE, "utf8")) as LocalCredentials;
  } catch {
    const fresh: LocalCredentials = {
      // Shaped like every Fulcrum key (`fk_` + 43 base64url), so the same header parsing applies.
      platformKey: `fk_${randomBytes(32).toString("base64url")}`,
      redisRestToken: randomBytes(24).toString("base64url"),
    };
    saveLocalCredentials(fresh);
    return fresh;
  }
}

export function saveLocalCredentials(credentials: LocalCredentials): void {
  mkdirSync(dirname(LOCAL_CREDENTIALS_FILE), { recursive: true });
  writeFileSync(LOCAL_CREDENTIALS_FILE, `${JSON.stringify(credentials, null, 2)}\n`, {
    mode: 0o600,
  });
}
