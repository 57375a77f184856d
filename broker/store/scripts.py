"""Lua scripts: each is one atomic step over keys of a single hash slot.

Identity records are JSON: ``{"c": created, "m": modified, "d": 0|1, "l": [logins],
"s": sequence}``. Scripts answer a status word first (the names of
``broker.identity.ports.LinkOutcome``), then the identity id and its record.
"""

# KEYS: pool, logins, identities, order, sequence   ARGV: login, new identity id, now
RESOLVE_LOGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner then
  local rec = redis.call('HGET', KEYS[3], owner)
  if rec then
    if cjson.decode(rec).d == 1 then return {'DISABLED', owner, rec} end
    return {'EXISTING', owner, rec}
  end
end
local now = tonumber(ARGV[3])
local seq = redis.call('INCR', KEYS[5])
local rec = cjson.encode({c = now, m = now, d = 0, l = {ARGV[1]}, s = seq})
redis.call('HSET', KEYS[3], ARGV[2], rec)
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'CREATED', ARGV[2], rec}
"""

# KEYS: pool, logins, identities   ARGV: login, identity id, now
LINK_LOGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local rec = redis.call('HGET', KEYS[3], ARGV[2])
if not rec then return {'NO_IDENTITY'} end
local r = cjson.decode(rec)
if r.d == 1 then return {'DISABLED', ARGV[2], rec} end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner == ARGV[2] then return {'EXISTING', ARGV[2], rec} end
if owner and redis.call('HEXISTS', KEYS[3], owner) == 1 then return {'OTHER_OWNER', owner} end
if #r.l > 0 then return {'HAS_OTHER_LOGINS', ARGV[2], rec} end
r.l = {ARGV[1]}
r.m = tonumber(ARGV[3])
rec = cjson.encode(r)
redis.call('HSET', KEYS[3], ARGV[2], rec)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'LINKED', ARGV[2], rec}
"""

# KEYS: pool index, pool sequence   ARGV: pool id, maximum number of pools
RESERVE_POOL = """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
return seq
"""

# KEYS: every key of the pool, the pool record first
DELETE_POOL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('UNLINK', unpack(KEYS))
return 1
"""

# KEYS: signing keys hash, current kid   ARGV: candidate kid, candidate record
ENSURE_SIGNING_KEY = """
local current = redis.call('GET', KEYS[2])
if current then
  local rec = redis.call('HGET', KEYS[1], current)
  if rec then return {current, rec} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return {ARGV[1], ARGV[2]}
"""
