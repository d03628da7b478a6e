import { COMMON_LUA } from "./common.js";

/**
 * Reserves an estimate against every counter at once, or nothing.
 *
 * KEYS: counter HASH / reservations ZSET pairs (1..2n), then the reservation HASH.
 * ARGV: now, expiresAt, resId, est tok, cost, llm, tool, counters JSON, then per counter
 *       9 values: limit tok, in, out, cost, llm, tool (-1: none), suspended, hard, expireAt.
 * Reply: ok (1/0), then per counter 11 integers: code (0 fits, 1 exhausted, 2 would
 *        exceed — its limit, or 2^53 - 1 for any reserved sum —, 3 suspended), dimension (1..6, 0 none), used, reserved, limit, and the
 *        remaining of each of the 6 dimensions (-1: no limit).
 */
export const RESERVE_LUA = `${COMMON_LUA}
local now = tonumber(ARGV[1])
local expires_at = tonumber(ARGV[2])
local est = {num(ARGV[4]), num(ARGV[5]), num(ARGV[6]), num(ARGV[7])}
local any = est[1] + est[2] + est[3] + est[4] > 0
local n = (#KEYS - 1) / 2
-- Dimension d: its used field, its reserved/estimate index (0: exhaustion check only).
local RES_OF = {1, 0, 0, 2, 3, 4}
-- Reserved sums stay within 2^53 - 1, limit or none: exact in Lua's doubles, and far from
-- HINCRBY's int64 overflow, whose error would end the script after the counters before
-- it were already raised (Redis does not roll a script back), leaking their amounts.
local MAX_EXACT = 9007199254740991
local ok = 1
local rows = {}
for i = 1, n do
  local counter, zset = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 8 + (i - 1) * 9
  purge(counter, zset, now)
  local v = redis.call('HMGET', counter, 'u_tok', 'u_in', 'u_out', 'u_cost', 'u_llm', 'u_tool',
    'r_tok', 'r_cost', 'r_llm', 'r_tool')
  local suspended = ARGV[base + 7] == '1'
  local hard = ARGV[base + 8] == '1'
  local row = {code = 0, dim = 0, used = 0, reserved = 0, limit = 0}
  if suspended then row.code = 3 end
  for d = 1, 6 do
    local limit = tonumber(ARGV[base + d])
    local r = RES_OF[d]
    local e = r > 0 and est[r] or 0
    local reserved = r > 0 and num(v[6 + r]) or 0
    if row.code == 0 and e > 0 and reserved + e > MAX_EXACT then
      row = {code = 2, dim = d, used = num(v[d]), reserved = reserved, limit = MAX_EXACT}
    elseif row.code == 0 and hard and limit >= 0 then
      local used = num(v[d])
      if used >= limit then
        row = {code = 1, dim = d, used = used, reserved = reserved, limit = limit}
      elseif e > 0 and used + reserved + e > limit then
        row = {code = 2, dim = d, used = used, reserved = reserved, limit = limit}
      end
    end
  end
  if row.code ~= 0 then ok = 0 end
  row.v = v
  rows[i] = row
end
if ok == 1 and any then
  local member = ARGV[3] .. ':' .. int(est[1]) .. ':' .. int(est[2]) .. ':' .. int(est[3]) .. ':' .. int(est[4])
  for i = 1, n do
    local counter, zset = KEYS[2 * i - 1], KEYS[2 * i]
    local base = 8 + (i - 1) * 9
    for r = 1, 4 do
      if est[r] > 0 then
        rows[i].v[6 + r] = redis.call('HINCRBY', counter, RESERVED[r], int(est[r]))
      end
    end
    redis.call('ZADD', zset, int(expires_at), member)
    local expire_at = num(ARGV[base + 9])
    if expire_at > 0 then
      redis.call('PEXPIREAT', counter, int(expire_at))
      redis.call('PEXPIREAT', zset, int(expire_at))
    end
  end
  local res = KEYS[#KEYS]
  redis.call('HSET', res, 'members', member, 'counters', ARGV[8], 'expiresAt', int(expires_at))
  redis.call('PEXPIREAT', res, int(expires_at + 3600000))
end
local reply = {ok}
for i = 1, n do
  local row = rows[i]
  local base = 8 + (i - 1) * 9
  for _, x in ipairs({row.code, row.dim, row.used, row.reserved, row.limit}) do
    reply[#reply + 1] = x
  end
  for d = 1, 6 do
    local limit = tonumber(ARGV[base + d])
    if limit < 0 then
      reply[#reply + 1] = -1
    else
      local r = RES_OF[d]
      local left = limit - num(row.v[d]) - (r > 0 and num(row.v[6 + r]) or 0)
      reply[#reply + 1] = left > 0 and left or 0
    end
  end
end
return reply
`;
