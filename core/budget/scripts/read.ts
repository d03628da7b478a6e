import { COMMON_LUA } from "./common.js";

/**
 * Reads counters without changing them; reservations that have expired but were not
 * purged yet are left out of the reserved sums.
 *
 * KEYS: counter HASH / ZSET pairs. ARGV: now.
 * Reply: per counter 11 integers: u_tok u_in u_out u_cost u_llm u_tool u_exec r_tok r_cost
 *        r_llm r_tool.
 */
export const READ_LUA = `${COMMON_LUA}
local now = ARGV[1]
local reply = {}
local width = NUSED + #RESERVED
for i = 1, #KEYS / 2 do
  local counter, zset = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HMGET', counter, unpack(USED))
  local r = redis.call('HMGET', counter, unpack(RESERVED))
  local out = {}
  for d = 1, NUSED do out[d] = num(v[d]) end
  for d = 1, #RESERVED do out[NUSED + d] = num(r[d]) end
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', now)) do
    local a = amounts(member)
    for d = 1, #RESERVED do out[NUSED + d] = math.max(0, out[NUSED + d] - a[d]) end
  end
  for d = 1, width do reply[#reply + 1] = out[d] end
end
return reply
`;
