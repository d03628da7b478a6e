import { COMMON_LUA } from "./common.js";

/**
 * Reserves an estimate against every counter at once, or nothing.
 *
 * KEYS: counter HASH / reservations ZSET pairs (1..2n), the reservation HASH, then
 *       optionally the tenant's BudgetSet key (an even count of keys means it is there).
 * ARGV: now, expiresAt, resId, est tok, cost, llm, tool, counters JSON, then per counter
 *       10 values: limit tok, in, out, cost, llm, tool, exec (-1: none), suspended, hard,
 *       expireAt.
 * Reply: {-1} alone when the BudgetSet key was given and does not exist (nothing was
 *        read or written: see below); else ok (1/0), then per counter 12 integers: code (0 fits, 1 exhausted, 2 would
 *        exceed — its limit, or 2^53 - 1 for any reserved sum —, 3 suspended), dimension
 *        (1..7, 0 none), used, reserved, limit, and the remaining of each of the 7
 *        dimensions (-1: no limit).
 *
 * Input / output tokens and execution time are never estimated (a call's split and
 * duration are known only after it ran): they are checked for exhaustion only.
 *
 * The BudgetSet guard: functions publish the set for every tenant (an empty one when it
 * has no budgets) and reconciliation restores the counters before the set, so a missing
 * set means Redis lost the tenant's state (a flush, an eviction) and its counters may read
 * 0 for budgets that are full. Refusing, atomically with the check, closes that window.
 */
export const RESERVE_LUA = `${COMMON_LUA}
local now = tonumber(ARGV[1])
local expires_at = tonumber(ARGV[2])
local est = {num(ARGV[4]), num(ARGV[5]), num(ARGV[6]), num(ARGV[7])}
local any = est[1] + est[2] + est[3] + est[4] > 0
local n = math.floor((#KEYS - 1) / 2)
if #KEYS == 2 * n + 2 and redis.call('EXISTS', KEYS[2 * n + 2]) == 0 then return {-1} end
-- Dimension d: its used field, its reserved/estimate index (0: exhaustion check only).
local RES_OF = {1, 0, 0, 2, 3, 4, 0}
-- Per counter ARGV: NUSED limits, suspended, hard, expireAt.
local STRIDE = NUSED + 3
-- Reserved sums stay within 2^53 - 1, limit or none: exact in Lua's doubles, and far from
-- HINCRBY's int64 overflow, whose error would end the script after the counters before
-- it were already raised (Redis does not roll a script back), leaking their amounts.
local MAX_EXACT = 9007199254740991
local ok = 1
local rows = {}
for i = 1, n do
  local counter, zset = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 8 + (i - 1) * STRIDE
  purge(counter, zset, now)
  -- v[1..NUSED]: used; v[NUSED + r]: reserved sum r.
  local v = redis.call('HMGET', counter, unpack(USED))
  local sums = redis.call('HMGET', counter, unpack(RESERVED))
  for r = 1, #RESERVED do v[NUSED + r] = sums[r] end
  local suspended = ARGV[base + NUSED + 1] == '1'
  local hard = ARGV[base + NUSED + 2] == '1'
  local row = {code = 0, dim = 0, used = 0, reserved = 0, limit = 0}
  if suspended then row.code = 3 end
  for d = 1, NUSED do
    local limit = tonumber(ARGV[base + d])
    local r = RES_OF[d]
    local e = r > 0 and est[r] or 0
    local reserved = r > 0 and num(v[NUSED + r]) or 0
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
    local base = 8 + (i - 1) * STRIDE
    for r = 1, 4 do
      if est[r] > 0 then
        rows[i].v[NUSED + r] = redis.call('HINCRBY', counter, RESERVED[r], int(est[r]))
      end
    end
    redis.call('ZADD', zset, int(expires_at), member)
    local expire_at = num(ARGV[base + NUSED + 3])
    if expire_at > 0 then
      redis.call('PEXPIREAT', counter, int(expire_at))
      redis.call('PEXPIREAT', zset, int(expire_at))
    end
  end
  local res = KEYS[2 * n + 1]
  redis.call('HSET', res, 'members', member, 'counters', ARGV[8], 'expiresAt', int(expires_at))
  redis.call('PEXPIREAT', res, int(expires_at + 3600000))
end
local reply = {ok}
for i = 1, n do
  local row = rows[i]
  local base = 8 + (i - 1) * STRIDE
  for _, x in ipairs({row.code, row.dim, row.used, row.reserved, row.limit}) do
    reply[#reply + 1] = x
  end
  for d = 1, NUSED do
    local limit = tonumber(ARGV[base + d])
    if limit < 0 then
      reply[#reply + 1] = -1
    else
      local r = RES_OF[d]
      local left = limit - num(row.v[d]) - (r > 0 and num(row.v[NUSED + r]) or 0)
      reply[#reply + 1] = left > 0 and left or 0
    end
  end
end
return reply
`;
