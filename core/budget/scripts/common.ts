/**
 * Lua shared by the ledger's scripts (prepended to each; Redis runs every script as one
 * atomic unit). Conventions:
 * - amounts are integers; numbers are passed to Redis through `int()` because Lua would
 *   otherwise format large ones as 1e+15, which HINCRBY rejects;
 * - a counter is the pair (HASH, ZSET of its reservations) at KEYS[2i-1], KEYS[2i];
 * - a reservation member is `<resId>:<tok>:<cost>:<llm>:<tool>`;
 * - used fields are the 7 dimensions of core/budget/limits.ts, in its order; execution
 *   time has no reserved sum (a call's duration is unknown before it runs).
 */
export const COMMON_LUA = `
local function int(n) return string.format('%d', n) end
local function num(v) return tonumber(v) or 0 end
local USED = {'u_tok', 'u_in', 'u_out', 'u_cost', 'u_llm', 'u_tool', 'u_exec'}
local NUSED = #USED
local RESERVED = {'r_tok', 'r_cost', 'r_llm', 'r_tool'}
-- Purged per counter and call; the rest next time (they only make the counter stricter).
local PURGE_BATCH = 500

local function amounts(member)
  local parts = {}
  for p in string.gmatch(member, '[^:]+') do parts[#parts + 1] = p end
  return {num(parts[2]), num(parts[3]), num(parts[4]), num(parts[5])}
end

-- Takes a reservation's amounts off a counter's reserved sums, never below 0 (a counter
-- restored after a flush no longer holds what older reservations added).
local function unreserve(counter, member)
  local a = amounts(member)
  for i = 1, 4 do
    if a[i] > 0 then
      local left = redis.call('HINCRBY', counter, RESERVED[i], int(-a[i]))
      if left < 0 then redis.call('HSET', counter, RESERVED[i], '0') end
    end
  end
end

-- Frees the reservations of a counter that expired at or before now.
local function purge(counter, zset, now)
  local expired = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, PURGE_BATCH)
  for _, member in ipairs(expired) do
    unreserve(counter, member)
    redis.call('ZREM', zset, member)
  end
end

-- Releases reservation KEYS[1] from the counter pairs at KEYS[2 ..]; 1 when it was still
-- there. ZREM tells whether a counter still held it, so a release, an expiry purge and a
-- settle never take the same amounts off twice.
local function release(pairs_count)
  local member = redis.call('HGET', KEYS[1], 'members')
  if not member then return 0 end
  for i = 1, pairs_count do
    local counter, zset = KEYS[2 * i], KEYS[2 * i + 1]
    if redis.call('ZREM', zset, member) == 1 then unreserve(counter, member) end
  end
  redis.call('DEL', KEYS[1])
  return 1
end

-- Raises a counter's used fields to the given absolute values (from PostgreSQL), never
-- lowers them: settling twice, or a reconciliation racing a settle, counts once.
-- args: NUSED (7) values then expireAtMs (0: none), from ARGV[base + 1].
local function raise_used(counter, base)
  local current = redis.call('HMGET', counter, unpack(USED))
  local out = {}
  for i = 1, NUSED do
    local given = num(ARGV[base + i])
    local now = num(current[i])
    if given > now then
      redis.call('HSET', counter, USED[i], int(given))
      now = given
    end
    out[i] = now
  end
  local expire_at = num(ARGV[base + NUSED + 1])
  if expire_at > 0 then redis.call('PEXPIREAT', counter, int(expire_at)) end
  return out
end
`;
