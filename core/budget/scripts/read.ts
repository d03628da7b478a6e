import { COMMON_LUA } from "./common.js";

/**
 * Reads counters without changing them; reservations that have expired but were not
 * purged yet are left out of the reserved sums.
 *
 * KEYS: counter HASH / ZSET pairs. ARGV: now.
 * Reply: per counter 10 integers: u_tok u_in u_out u_cost u_llm u_tool r_tok r_cost r_llm r_tool.
 */
export const READ_LUA = `${COMMON_LUA}
local now = ARGV[1]
local reply = {}
for i = 1, #KEYS / 2 do
  local counter, zset = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HMGET', counter, 'u_tok', 'u_in', 'u_out', 'u_cost', 'u_llm', 'u_tool',
    'r_tok', 'r_cost', 'r_llm', 'r_tool')
  local out = {}
  for d = 1, 10 do out[d] = num(v[d]) end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', now)) do
    local a = amounts(member)
    for r = 1, 4 do out[6 + r] = math.max(0, out[6 + r] - a[r]) end
  end
  for d = 1, 10 do reply[#reply + 1] = out[d] end
end
return reply
`;
