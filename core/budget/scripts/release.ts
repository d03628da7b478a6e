import { COMMON_LUA } from "./common.js";

/**
 * Releases a reservation (the decision was not ALLOW/WARN, or the call was abandoned).
 *
 * KEYS: the reservation HASH, then its counters' HASH / ZSET pairs.
 * Reply: 1 when the reservation was still there, 0 when it was already released,
 *        settled or forgotten (idempotent).
 */
export const RELEASE_LUA = `${COMMON_LUA}
return release((#KEYS - 1) / 2)
`;
