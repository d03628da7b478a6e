import { COMMON_LUA } from "./common.js";

/**
 * Reconciliation: raises counters' used fields to PostgreSQL's absolute values (max, so a
 * restore racing a settle never double counts, and restoring twice changes nothing).
 *
 * KEYS: counter HASHes. ARGV: per counter 8 values: tok, in, out, cost, llm, tool, exec,
 *       expireAt.
 * Reply: per counter its 7 used values after the call.
 */
export const RESTORE_LUA = `${COMMON_LUA}
local reply = {}
for i = 1, #KEYS do
  local used = raise_used(KEYS[i], (i - 1) * (NUSED + 1))
  for d = 1, NUSED do reply[#reply + 1] = used[d] end
end
return reply
`;
