"""Lua scripts: each is one atomic step over keys of a single hash slot.

Identity records are JSON: ``{"c": created, "m": modified, "d": 0|1, "l": [logins],
"s": sequence}``, plus ``"p": 1`` while the identity index entry of an identity that
RESOLVE_LOGIN created is not yet known to be written (``RedisStore.resolve_login``); cjson
writes an empty list as ``{}``, which ``#`` and ``ipairs`` read as empty. Scripts that
decide something answer a status word first (the names of the outcome enums in
``broker.identity.ports``), then the identity id and its record.
"""

# KEYS: pool, logins, identities, order, sequence   ARGV: login, new identity id, now
# The record of a new identity carries "p": 1 until its creation is confirmed: its identity
# index entry written and (with REDIS_WAIT_REPLICAS) the replicas' WAIT passed.
RESOLVE_LOGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner then
  local rec = redis.call('HGET', KEYS[3], owner)
  if rec then
    local r = cjson.decode(rec)
    if r.d == 1 then return {'DISABLED', owner, rec} end
    -- Still unconfirmed (see RedisStore.resolve_login): rewritten, so that the caller's
    -- WAIT on this connection covers the creation too.
    if r.p == 1 then redis.call('HSET', KEYS[3], owner, rec) end
    return {'EXISTING', owner, rec}
  end
end
local now = tonumber(ARGV[3])
local seq = redis.call('INCR', KEYS[5])
local rec = cjson.encode({c = now, m = now, d = 0, l = {ARGV[1]}, s = seq, p = 1})
redis.call('HSET', KEYS[3], ARGV[2], rec)
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'CREATED', ARGV[2], rec}
"""

# KEYS: as RESOLVE_LOGIN, then one more key of the pool   ARGV: as RESOLVE_LOGIN
# RESOLVE_LOGIN, and when the login's identity exists, the value of the extra key too (the
# backend door's token cache entry), read in the same round trip: {'EXISTING', id, rec, value}.
RESOLVE_LOGIN_AND_PEEK = (
    "local function resolve()\n"
    + RESOLVE_LOGIN
    + """end
local answer = resolve()
if answer[1] == 'EXISTING' then
  return {answer[1], answer[2], answer[3], redis.call('GET', KEYS[6])}
end
return answer
"""
)

# KEYS: identities   ARGV: identity id
# Clears the "index pending" mark once the identity index entry is written.
CONFIRM_INDEXED = """
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
local r = cjson.decode(rec)
if r.p == nil then return 0 end
r.p = nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
return 1
"""

# KEYS: pool, logins, identities, order, sequence
# ARGV: now, new identity id, max logins, the identity named ('' for none), the developer
# login ('' for none), the developer provider's key prefix ('' for none), then the logins.
# Several logins of one call at once (contract section 9): the identity they resolve to,
# made when none holds any of them, and every other identity holding one of them merged
# into it (its logins moved, itself disabled). The survivor is the identity named, else the
# one holding the developer login, else the oldest. The identity named must hold one of the
# logins already, or else hold no login while no other identity holds one of the call's;
# the developer login may belong to no identity but the one named (section 5). Logins
# outside the developer prefix are public: at most one per provider (the key's part before
# its first ':'). A refusal changes nothing. Answers a status word (``LinkOutcome``), then
# the survivor's id and record, then the ids merged.
RESOLVE_LOGINS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
local named, developer, prefix = ARGV[4], ARGV[5], ARGV[6]
local owners, records, order = {}, {}, {}
local function load(id)
  if records[id] then return records[id] end
  local rec = redis.call('HGET', KEYS[3], id)
  if not rec then return nil end
  local r = cjson.decode(rec)
  if #r.l == 0 then r.l = {} end
  records[id] = r
  order[#order + 1] = id
  return r
end
if named ~= '' then
  local r = load(named)
  if not r then return {'NO_IDENTITY'} end
  if r.d == 1 then return {'DISABLED', named, cjson.encode(r)} end
end
local wanted = {}
for i = 7, #ARGV do
  local login = ARGV[i]
  wanted[#wanted + 1] = login
  local owner = redis.call('HGET', KEYS[2], login)
  if owner then
    local r = load(owner)
    if r then
      if r.d == 1 then return {'DISABLED', owner, cjson.encode(r)} end
      owners[login] = owner
    end
  end
end
local survivor = nil
if named ~= '' then
  survivor = named
  if developer ~= '' and owners[developer] and owners[developer] ~= named then
    return {'OTHER_OWNER', owners[developer]}
  end
  local holds, elsewhere = false, false
  for _, owner in pairs(owners) do
    if owner == named then holds = true else elsewhere = true end
  end
  if not holds and (#records[named].l > 0 or elsewhere) then
    return {'HAS_OTHER_LOGINS', named, cjson.encode(records[named])}
  end
elseif developer ~= '' and owners[developer] then
  survivor = owners[developer]
else
  for _, id in ipairs(order) do
    local r = records[id]
    local o = survivor and records[survivor]
    if o == nil or r.c < o.c or (r.c == o.c and (r.s or 0) < (o.s or 0)) then survivor = id end
  end
end
if survivor == nil then
  local seq = redis.call('INCR', KEYS[5])
  local rec = cjson.encode({c = now, m = now, d = 0, l = wanted, s = seq, p = 1})
  redis.call('HSET', KEYS[3], ARGV[2], rec)
  redis.call('ZADD', KEYS[4], seq, ARGV[2])
  for _, login in ipairs(wanted) do redis.call('HSET', KEYS[2], login, ARGV[2]) end
  return {'CREATED', ARGV[2], rec}
end
local held, seen = {}, {}
local function hold(login)
  if not seen[login] then seen[login] = true; held[#held + 1] = login end
end
for _, login in ipairs(records[survivor].l) do hold(login) end
local merged = {}
for _, id in ipairs(order) do
  if id ~= survivor then
    local mine = false
    for _, owner in pairs(owners) do if owner == id then mine = true end end
    if mine then
      merged[#merged + 1] = id
      for _, login in ipairs(records[id].l) do hold(login) end
    end
  end
end
for _, login in ipairs(wanted) do hold(login) end
if #held > limit then return {'TOO_MANY', survivor, cjson.encode(records[survivor])} end
local providers = {}
for _, login in ipairs(held) do
  if prefix == '' or string.sub(login, 1, #prefix) ~= prefix then
    local provider = string.match(login, '^([^:]*):')
    if provider then
      if providers[provider] then
        return {'CONFLICT', survivor, cjson.encode(records[survivor])}
      end
      providers[provider] = true
    end
  end
end
local r = records[survivor]
local added = #held > #r.l
if added or #merged > 0 then r.m = now end
r.l = held
local rec = cjson.encode(r)
redis.call('HSET', KEYS[3], survivor, rec)  -- written even unchanged: WAIT covers a retry
for _, login in ipairs(held) do redis.call('HSET', KEYS[2], login, survivor) end
for _, id in ipairs(merged) do
  local m = records[id]
  m.l = {}
  m.d = 1
  m.m = now
  redis.call('HSET', KEYS[3], id, cjson.encode(m))
end
local answer = {'EXISTING', survivor, rec}
if #merged > 0 then answer[1] = 'MERGED' elseif added then answer[1] = 'LINKED' end
for _, id in ipairs(merged) do answer[#answer + 1] = id end
return answer
"""

# KEYS: pool, logins, identities   ARGV: login, identity id, now
LINK_LOGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local rec = redis.call('HGET', KEYS[3], ARGV[2])
if not rec then return {'NO_IDENTITY'} end
local r = cjson.decode(rec)
if r.d == 1 then return {'DISABLED', ARGV[2], rec} end
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner == ARGV[2] then
  redis.call('HSET', KEYS[3], ARGV[2], rec)  -- a retry of a link: WAIT covers it again
  return {'EXISTING', ARGV[2], rec}
end
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

# KEYS: ``PoolKeys.deletion()``: pool, sequence, roles, principal tags, fence, then logins,
# identities, order, then their three tombstones. O(1) whatever the pool's size: the small
# keys go, the three that grow with the pool are renamed to tombstones in the same slot for
# ``PoolStore`` to clean in bounded steps. Answers 0 for no pool, else 1.
DELETE_POOL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
for i = 6, 8 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 3]) end
end
return 1
"""

# KEYS: pool index, pool names   ARGV: pool id
# The pool leaves the listing first (DeleteIdentityPool): a deletion cut short after this
# leaves a pool that DescribeIdentityPool still finds and DeleteIdentityPool finishes.
UNINDEX_POOL = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS: pool index, pool names   ARGV: after (exclusive) or '-inf', limit
# One page of ListIdentityPools: {1 if more follow else 0, id, position, name or false, ...}.
# A pool without a name (being created, or written before names were kept) is answered with
# false; the store reads its record instead.
LIST_POOLS = """
local low = ARGV[1] == '-inf' and '-inf' or '(' .. ARGV[1]
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {0}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], rows[i])
end
if #rows > 0 and redis.call('ZCOUNT', KEYS[1], '(' .. rows[#rows], '+inf') > 0 then out[1] = 1 end
return out
"""

# KEYS: pool, principal tag maps   ARGV: provider
# The pool record and one provider's map, read at one moment.
READ_POOL_AND_TAG_MAP = """
return {redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])}
"""

# KEYS: signing keys hash, current kid   ARGV: candidate kid, candidate record
# An existing key is written again (the same value), so that the caller's WAIT covers the
# key it is about to sign with, whoever stored it.
ENSURE_SIGNING_KEY = """
local current = redis.call('GET', KEYS[2])
if current then
  local rec = redis.call('HGET', KEYS[1], current)
  if rec then
    redis.call('SET', KEYS[2], current)
    return {current, rec}
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return {ARGV[1], ARGV[2]}
"""

# KEYS: pool, identities, order, sequence   ARGV: new identity id, now
CREATE_UNAUTHENTICATED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local now = tonumber(ARGV[2])
local seq = redis.call('INCR', KEYS[4])
local rec = cjson.encode({c = now, m = now, d = 0, l = {}, s = seq})
redis.call('HSET', KEYS[2], ARGV[1], rec)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return {'CREATED', ARGV[1], rec}
"""

# KEYS: logins, identities   ARGV: login
# Read-only: the identity a login belongs to, read in one step.
LOOKUP_LOGIN = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then return {} end
local rec = redis.call('HGET', KEYS[2], owner)
if not rec then return {} end
return {owner, rec}
"""

# KEYS: pool, logins, identities   ARGV: source login, destination login, now, max logins,
# the developer provider's key prefix
# Every login of the source's identity moves to the destination's; the source is disabled.
# Refused, changing nothing, when the destination would hold two users of one public
# provider (a login outside the developer prefix; contract section 9).
MERGE_LOGINS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local dst = redis.call('HGET', KEYS[2], ARGV[2])
local drec = dst and redis.call('HGET', KEYS[3], dst)
if not drec then return {'NO_DESTINATION'} end
local src = redis.call('HGET', KEYS[2], ARGV[1])
local srec = src and redis.call('HGET', KEYS[3], src)
if not srec then return {'NO_SOURCE'} end
if src == dst then
  redis.call('HSET', KEYS[3], dst, drec)  -- a retry of a merge: WAIT covers it again
  return {'UNCHANGED', dst, drec}
end
local d = cjson.decode(drec)
local s = cjson.decode(srec)
if d.d == 1 then return {'DISABLED', dst, drec} end
if s.d == 1 then return {'DISABLED', src, srec} end
if #d.l + #s.l > tonumber(ARGV[4]) then return {'TOO_MANY', dst, drec} end
local providers = {}
for _, list in ipairs({d.l, s.l}) do
  for _, login in ipairs(list) do
    if string.sub(login, 1, #ARGV[5]) ~= ARGV[5] then
      local provider = string.match(login, '^([^:]*):')
      if provider and providers[provider] then return {'CONFLICT', dst, drec} end
      if provider then providers[provider] = true end
    end
  end
end
local now = tonumber(ARGV[3])
local moved = {}
for _, login in ipairs(d.l) do moved[#moved + 1] = login end
for _, login in ipairs(s.l) do
  moved[#moved + 1] = login
  redis.call('HSET', KEYS[2], login, dst)
end
d.l = moved
d.m = now
s.l = {}
s.d = 1
s.m = now
drec = cjson.encode(d)
redis.call('HSET', KEYS[3], dst, drec, src, cjson.encode(s))
return {'MERGED', dst, drec}
"""

# KEYS: pool, logins, identities   ARGV: identity id, login, now
# An identity left without logins is disabled in the same step: AWS makes an identity
# stripped of every login inaccessible (contract section 7).
UNLINK_LOGIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local rec = redis.call('HGET', KEYS[3], ARGV[1])
if not rec then return {'NO_IDENTITY'} end
local r = cjson.decode(rec)
if r.d == 1 then return {'DISABLED', ARGV[1], rec} end
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[1] then return {'NOT_LINKED', ARGV[1], rec} end
local kept = {}
for _, login in ipairs(r.l) do
  if login ~= ARGV[2] then kept[#kept + 1] = login end
end
r.l = kept
if #kept == 0 then r.d = 1 end
r.m = tonumber(ARGV[3])
rec = cjson.encode(r)
redis.call('HSET', KEYS[3], ARGV[1], rec)
redis.call('HDEL', KEYS[2], ARGV[2])
return {'UNLINKED', ARGV[1], rec}
"""

# KEYS: logins, identities, order, fence   ARGV: identity ids
# Deletes each identity with its login indexes; answers the ids that existed. The fence is
# always written, so that WAIT confirms a deletion an earlier, unconfirmed try made.
DELETE_IDENTITIES = """
redis.call('INCR', KEYS[4])
local deleted = {}
for _, id in ipairs(ARGV) do
  local rec = redis.call('HGET', KEYS[2], id)
  if rec then
    for _, login in ipairs(cjson.decode(rec).l) do
      if redis.call('HGET', KEYS[1], login) == id then redis.call('HDEL', KEYS[1], login) end
    end
    redis.call('HDEL', KEYS[2], id)
    deleted[#deleted + 1] = id
  end
  redis.call('ZREM', KEYS[3], id)
end
return deleted
"""

# KEYS: pool, identities, order   ARGV: after (exclusive) or '-inf', limit, hide disabled (0|1),
# how many entries one call may examine
# Answers: no pool -> {'NO_POOL'}; else {last position examined or '', 1 if more follow else 0,
# id, record, id, record, ...} in creation order.
LIST_IDENTITIES = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NO_POOL'} end
local low = ARGV[1] == '-inf' and '-inf' or '(' .. ARGV[1]
local limit = tonumber(ARGV[2])
local hide = ARGV[3] == '1'
local budget = tonumber(ARGV[4])
local out = {'', 0}
local found = 0
while found < limit and budget > 0 do
  local batch = math.min(budget, limit - found)
  local rows = redis.call('ZRANGEBYSCORE', KEYS[3], low, '+inf', 'WITHSCORES', 'LIMIT', 0, batch)
  if #rows == 0 then break end
  for i = 1, #rows, 2 do
    local id, seq = rows[i], rows[i + 1]
    budget = budget - 1
    out[1] = seq
    low = '(' .. seq
    local rec = redis.call('HGET', KEYS[2], id)
    if rec and not (hide and cjson.decode(rec).d == 1) then
      out[#out + 1] = id
      out[#out + 1] = rec
      found = found + 1
    end
  end
end
if out[1] ~= '' and redis.call('ZCOUNT', KEYS[3], '(' .. out[1], '+inf') > 0 then out[2] = 1 end
return out
"""

# KEYS: pool   ARGV: the record read, the record to write
# Compare-and-set: 1 written, 0 the record changed since it was read, -1 the pool is gone.
SWAP_POOL = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# KEYS: pool, target   ARGV: value   (target: the pool's roles string)
SET_IF_POOL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

# KEYS: pool, target hash   ARGV: the pool record read, field, value
# (target: the pool's principal tag maps). Writes only while the pool record is still the
# one the caller checked the write against: 1 written, 0 the record changed since it was
# read, -1 the pool is gone.
HSET_IF_POOL_IS = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
