/** The last millisecond minted and its 12-bit sequence (RFC 9562 §6.2, method 1). */
let lastMs = -1;
let sequence = 0;

/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit sequence, then random bits.
 * Time-ordered, so ids sort by creation and index well; within one millisecond the
 * sequence counts up, so ids minted one after another in a process sort in that order
 * (an execution's events logged in the same millisecond keep their order). Minted with
 * web-standard crypto only.
 */
export function uuidv7(now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  if (now === lastMs && sequence < 0xfff) {
    sequence++;
  } else if (now > lastMs) {
    lastMs = now;
    // A random start below the midpoint leaves room to count up within the millisecond.
    sequence = (((bytes[6] ?? 0) & 0x07) << 8) | (bytes[7] ?? 0);
  }
  if (now === lastMs) {
    bytes[6] = (sequence >> 8) & 0x0f;
    bytes[7] = sequence & 0xff;
  }
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms & 0xff;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70; // version 7
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const DECISION_PREFIX = "dec_";

/** Decision ids carry a prefix so a log line says what the id names. */
export function newDecisionId(): string {
  return `${DECISION_PREFIX}${uuidv7()}`;
}

/** The UUID inside a decision id (what a uuid column stores). */
export function decisionUuid(decisionId: string): string {
  return decisionId.startsWith(DECISION_PREFIX)
    ? decisionId.slice(DECISION_PREFIX.length)
    : decisionId;
}

/** The decision id as the API shows it, from its stored UUID ('' stays ''). */
export function decisionIdOf(uuid: string | null | undefined): string {
  return uuid ? `${DECISION_PREFIX}${uuid}` : "";
}
