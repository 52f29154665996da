/**
 * Lua scripts of the Redis driver. Each runs atomically on the server, which is what makes
 * compare-and-set, the version counter and the key index consistent without a transaction.
 * KEYS[1] is the entry hash, KEYS[2] the namespace's sorted-set index, KEYS[3] its version counter;
 * all share the namespace's hash tag, so they live in one cluster slot.
 */

/** ARGV: value, metadata, ttlMs, expected version ('' for none), key. Returns the version or -1. */
export const SET = `
if ARGV[4] ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
  if cur ~= ARGV[4] then return -1 end
end
local ver = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ver, 'm', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
redis.call('ZADD', KEYS[2], 0, ARGV[5])
return ver
`;

/**
 * KEYS[1] index, KEYS[2] version counter, KEYS[3..] the entry hashes of the items in order;
 * ARGV: per item value, metadata, ttlMs, key. Writes the items in order and returns their
 * versions (one INCRBY reserves them all, so each item's is larger than the previous one's).
 * The keys enter the index first, in ZADDs of at most 500 members (Lua's `unpack` stops near
 * 8000 values): if the script failed midway, an indexed key without an entry is harmless (LIST
 * and the sweeper drop it), whereas an entry missing from the index could never be listed.
 */
export const SET_MANY = `
local n = #KEYS - 2
local members = {}
for i = 1, n do
  members[#members + 1] = 0
  members[#members + 1] = ARGV[(i - 1) * 4 + 4]
  if #members >= 1000 or i == n then
    redis.call('ZADD', KEYS[1], unpack(members))
    members = {}
  end
end
local last = redis.call('INCRBY', KEYS[2], n)
local out = {}
for i = 1, n do
  local a = (i - 1) * 4
  local k = KEYS[i + 2]
  local ver = last - n + i
  redis.call('HSET', k, 'v', ARGV[a + 1], 'ver', ver, 'm', ARGV[a + 2])
  if tonumber(ARGV[a + 3]) > 0 then redis.call('PEXPIRE', k, ARGV[a + 3]) else redis.call('PERSIST', k) end
  out[i] = ver
end
return out
`;

/**
 * KEYS: entry hashes. Returns one flat array, four slots per key: value, version, metadata,
 * pttl, or four nils for a missing key (a flat reply decodes in about half the client CPU of one
 * nested array per key). HMGET gives `false` for a missing field, which becomes a nil reply (a
 * Lua nil would end the array). ARGV[1], when given, is the most bytes the values may hold in
 * all: once they pass it the reply is -1, and nothing more is read or sent.
 */
export const GET = `
local out = {}
local budget = tonumber(ARGV[1])
local total = 0
for i, k in ipairs(KEYS) do
  local f = redis.call('HMGET', k, 'v', 'ver', 'm')
  if budget and f[1] then
    total = total + #f[1]
    if total > budget then return -1 end
  end
  local at = (i - 1) * 4
  out[at + 1] = f[1]
  out[at + 2] = f[2]
  out[at + 3] = f[3]
  out[at + 4] = f[2] and redis.call('PTTL', k) or false
end
return out
`;

/** KEYS[1] entry, KEYS[2] index; ARGV[1] key. */
export const DELETE = `
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
`;

/** PERSIST answers 0 both for "absent" and "had no TTL"; this tells them apart. */
export const PERSIST = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PERSIST', KEYS[1])
return 1
`;

/**
 * KEYS[1] index; ARGV: min, max, wanted count, entry key prefix. Walks the index in byte order,
 * drops members whose entry expired (Redis expired the hash, not the index member) and
 * returns {live keys (up to the wanted count), the last member examined or false, 1 when the
 * range ran out}. The walk stops after 1000 rounds: when that cuts it short (a long run of
 * expired members), the caller resumes after the last member examined.
 */
export const LIST = `
local out = {}
local min = ARGV[1]
local want = tonumber(ARGV[3])
local last = false
local ended = 0
for _ = 1, 1000 do
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], min, ARGV[2], 'LIMIT', 0, want - #out)
  if #batch == 0 then
    ended = 1
    break
  end
  for _, m in ipairs(batch) do
    if redis.call('EXISTS', ARGV[4] .. m) == 1 then out[#out + 1] = m else redis.call('ZREM', KEYS[1], m) end
  end
  last = batch[#batch]
  if #out >= want then break end
  min = '(' .. last
end
return {out, last, ended}
`;

/**
 * KEYS[1] index; ARGV: start (exclusive lex bound or "-"), batch size, entry key prefix. Removes
 * members whose entry expired from one batch of the index; returns {last member, removed}.
 */
export const SWEEP = `
local batch = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
local removed = 0
for _, m in ipairs(batch) do
  if redis.call('EXISTS', ARGV[3] .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
    removed = removed + 1
  end
end
return {batch[#batch] or false, removed}
`;
