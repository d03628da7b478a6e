import { COMMON_LUA } from "./common.js";

/**
 * Settles a call: releases its reservation (when still there) and raises the used fields
 * of each counter to PostgreSQL's absolute values (max: idempotent, order-insensitive).
 *
 * KEYS: the reservation HASH, its counters' HASH / ZSET pairs (ARGV[1] of them), then
 *       the counter HASHes to raise.
 * ARGV: pair count, then per raised counter 8 values: tok, in, out, cost, llm, tool,
 *       exec, expireAt (0: none).
 * Reply: released (1/0), then per raised counter its 7 used values after the call.
 */
export const SETTLE_LUA = `${COMMON_LUA}
local pair_count = tonumber(ARGV[1])
local reply = {release(pair_count)}
local first = 2 + 2 * pair_count
for i = first, #KEYS do
  local used = raise_used(KEYS[i], 1 + (i - first) * (NUSED + 1))
  for d = 1, NUSED do reply[#reply + 1] = used[d] end
end
return reply
`;
