"""The server-side Lua scripts of the memory store: each runs atomically in Redis.

One script is one step that must be all-or-nothing (a segment commit, a retention batch, a lease
renewal): Redis runs a script without interleaving other commands, and AOF logs its effects as one
MULTI/EXEC, which a crash cannot half-apply. Every script touches the keys of one stream only, all
inside its `{name}` hash tag (memory/keys.py), so it runs on one Redis Cluster shard.

Each text is preceded by its contract: the KEYS and ARGV it takes and what it returns.
`RedisMemoryStore` (memory/store.py) registers them; retention (memory/retention.py) calls TRIM and
COMPACT through the store.
"""

# KEYS: info, segment hash, tokens, time zset, gaps zset, writer lease.
# ARGV: index, start, end, meta, embedding, ref field ('r' | 'p'), ref value, tokens, first slot,
#       lease owner ('' = none: then only while nobody holds the lease), anchor thumbnail ('' = none;
#       field 'a', counted with the proxies' bytes: both are what recall reads frames from).
# Returns {status, committed}: 1 written, 0 duplicate, -1 no such stream, -2 out of order,
# -3 the lease is another writer's (or ours expired).
PUT = """#!lua
local info = KEYS[1]
if redis.call('EXISTS', info) == 0 then return {-1, -1} end
local holder = redis.call('GET', KEYS[6])
if (holder or '') ~= ARGV[10] then return {-3, tonumber(redis.call('HGET', info, 'committed'))} end
local index = tonumber(ARGV[1])
local committed = tonumber(redis.call('HGET', info, 'committed'))
if index <= committed then return {0, committed} end
if index ~= committed + 1 then return {-2, committed} end
local first = tonumber(redis.call('HGET', info, 'first'))
if first <= committed then
  -- A retained segment precedes this one: any time between them had no video (1 ms tolerance).
  local prev_end = redis.call('HGET', info, 'end')
  if prev_end and tonumber(ARGV[2]) > tonumber(prev_end) + 0.001 then
    redis.call('ZADD', KEYS[5], ARGV[2], prev_end .. ' ' .. ARGV[2])
  end
end
redis.call('DEL', KEYS[2])  -- leftovers of a deleted stream of the same name must not mix in
redis.call('HSET', KEYS[2], 'm', ARGV[4], 'e', ARGV[5], ARGV[6], ARGV[7])
if string.len(ARGV[11]) > 0 then redis.call('HSET', KEYS[2], 'a', ARGV[11]) end
if string.len(ARGV[8]) > 0 then redis.call('SET', KEYS[3], ARGV[8]) end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
if first == committed + 1 then redis.call('HSET', info, 'start', ARGV[2]) end
redis.call('HSET', info, 'committed', index, 'end', ARGV[3], 'slot', ARGV[9])
redis.call('HINCRBY', info, 'b_tok', string.len(ARGV[8]))
redis.call('HINCRBY', info, 'b_emb', string.len(ARGV[5]))
redis.call('HINCRBY', info, 'b_prx', string.len(ARGV[7]) + string.len(ARGV[11]))
redis.call('HINCRBY', info, 'b_meta', string.len(ARGV[4]))
return {1, index}
"""

# KEYS: info, time zset, gaps zset, then (segment hash, tokens) per segment to remove, oldest first.
# Cold segments' shard bytes leave x_tok/x_prx here; their shards go by the hour (memory/cold.py).
# ARGV: expected first, then the indices being removed.
# Returns the number removed (-1 when `first` moved meanwhile: another trimmer ran; retry).
TRIM = """#!lua
local info = KEYS[1]
local first = tonumber(redis.call('HGET', info, 'first'))
if first == nil or first ~= tonumber(ARGV[1]) then return -1 end
local committed = tonumber(redis.call('HGET', info, 'committed'))
local n = #ARGV - 1
if first + n - 1 > committed then n = committed - first + 1 end
if n <= 0 then return 0 end
local btok, bemb, bprx, bmeta, xtok, xprx = 0, 0, 0, 0, 0, 0
for j = 0, n - 1 do
  local seg, tok = KEYS[4 + 2 * j], KEYS[5 + 2 * j]
  btok = btok + redis.call('STRLEN', tok)
  bemb = bemb + redis.call('HSTRLEN', seg, 'e')
  bprx = bprx + redis.call('HSTRLEN', seg, 'p') + redis.call('HSTRLEN', seg, 'r') + redis.call('HSTRLEN', seg, 'a')
  bmeta = bmeta + redis.call('HSTRLEN', seg, 'm')
  local cold = redis.call('HGET', seg, 'c')  -- a cold-tier pointer (memory/cold.py): its sizes
  if cold then
    local tl, pl = string.match(cold, '^%S+ %S+ %S+ (%S+) %S+ %S+ (%S+) %S+$')
    xtok = xtok + tonumber(tl)
    xprx = xprx + tonumber(pl)
  end
  redis.call('DEL', seg, tok)
  redis.call('ZREM', KEYS[2], ARGV[2 + j])
end
redis.call('HSET', info, 'first', first + n)
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nxt > 0 then
  redis.call('HSET', info, 'start', nxt[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nxt[2])  -- gaps ending at or before it
else
  redis.call('HSET', info, 'start', redis.call('HGET', info, 'end'))
  redis.call('DEL', KEYS[3])
end
redis.call('HINCRBY', info, 'b_tok', -btok)
redis.call('HINCRBY', info, 'b_emb', -bemb)
redis.call('HINCRBY', info, 'b_prx', -bprx)
redis.call('HINCRBY', info, 'b_meta', -bmeta)
redis.call('HINCRBY', info, 'x_tok', -xtok)
redis.call('HINCRBY', info, 'x_prx', -xprx)
return n
"""

# Out-of-order commits (the work queue, memory/jobqueue.py): workers finish segments in any order.
# A job is numbered by its producer (`seq`: the source's segment number). A job above the last
# contiguous seq done "lands" in staging keys (w:{seq}, wk:{seq}) and the `landed` hash; then every
# contiguous landed seq is advanced in order: a segment is renamed into the next index (g:, k:), so
# indices stay contiguous and `committed` keeps meaning "every segment up to here is entirely
# there"; a skipped seq (its job was dead-lettered, or dropped by live backpressure) takes no index
# and becomes a gap in time. `seq` in the info hash is the last contiguous seq done.
# KEYS: info, staging hash, staging tokens, time zset, gaps zset, writer lease, landed hash.
# ARGV: seq, start, end, meta, embedding, ref field, ref value, tokens, first slot,
#       producer's lease token ('' = none), skip ('1': no segment, a gap), key base
#       ('{prefix}:s:{{name}}:', the segment keys are base .. 'g:' .. index, all in the stream's slot),
#       anchor thumbnail ('' = none; as PUT's).
# Returns {status, committed}: 1 landed (maybe not yet contiguous), 0 duplicate, -1 no such
# stream, -3 another writer holds the lease.
LAND = """#!lua
local info = KEYS[1]
if redis.call('EXISTS', info) == 0 then return {-1, -1} end
local committed = tonumber(redis.call('HGET', info, 'committed'))
local holder = redis.call('GET', KEYS[6])
if holder and holder ~= ARGV[10] then return {-3, committed} end
local seq = tonumber(ARGV[1])
local done = tonumber(redis.call('HGET', info, 'seq') or committed)
if seq <= done or redis.call('HEXISTS', KEYS[7], ARGV[1]) == 1 then return {0, committed} end
if ARGV[11] == '1' then
  redis.call('HSET', KEYS[7], ARGV[1], 'x ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[9])
else
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], 'm', ARGV[4], 'e', ARGV[5], ARGV[6], ARGV[7])
  if string.len(ARGV[13]) > 0 then redis.call('HSET', KEYS[2], 'a', ARGV[13]) end
  if string.len(ARGV[8]) > 0 then redis.call('SET', KEYS[3], ARGV[8]) end
  redis.call('HSET', KEYS[7], ARGV[1], 's ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[9])
  redis.call('HINCRBY', info, 'b_tok', string.len(ARGV[8]))
  redis.call('HINCRBY', info, 'b_emb', string.len(ARGV[5]))
  redis.call('HINCRBY', info, 'b_prx', string.len(ARGV[7]) + string.len(ARGV[13]))
  redis.call('HINCRBY', info, 'b_meta', string.len(ARGV[4]))
end
local first = tonumber(redis.call('HGET', info, 'first'))
local base = ARGV[12]
while true do
  local nseq = done + 1
  local entry = redis.call('HGET', KEYS[7], tostring(nseq))
  if not entry then break end
  local kind, s, e, slot = string.match(entry, '(%a) (%S+) (%S+) (%S+)')
  local prev_end = redis.call('HGET', info, 'end')
  if kind == 'x' then
    -- No segment: its stretch is a gap in time (from the previous segment's end when there is one).
    local g0 = s
    if first <= committed and prev_end then g0 = prev_end end
    redis.call('ZADD', KEYS[5], e, g0 .. ' ' .. e)
    if first <= committed then redis.call('HSET', info, 'end', e) end
  else
    local index = committed + 1
    if first <= committed and prev_end and tonumber(s) > tonumber(prev_end) + 0.001 then
      redis.call('ZADD', KEYS[5], s, prev_end .. ' ' .. s)
    end
    local wseg, wtok = base .. 'w:' .. nseq, base .. 'wk:' .. nseq
    redis.call('DEL', base .. 'g:' .. index, base .. 'k:' .. index)
    redis.call('RENAME', wseg, base .. 'g:' .. index)
    if redis.call('EXISTS', wtok) == 1 then redis.call('RENAME', wtok, base .. 'k:' .. index) end
    redis.call('ZADD', KEYS[4], s, index)
    if first == index then redis.call('HSET', info, 'start', s) end
    redis.call('HSET', info, 'committed', index, 'end', e, 'slot', slot)
    committed = index
  end
  redis.call('HSET', info, 'seq', nseq)
  redis.call('HDEL', KEYS[7], tostring(nseq))
  done = nseq
end
return {1, committed}
"""

# KEYS: lease. ARGV: token, milliseconds. Extends the lease only while it is ours.
RENEW = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lease. ARGV: token. Deletes the lease only while it is ours.
RELEASE = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: ivf hash. ARGV: trained-at size, centroid bytes, dim, PQ codebook bytes ('' = none: IVF-Flat).
# Newer (larger) training wins; at the same size, an IVF-PQ one wins over an IVF-Flat one.
OFFER_IVF = """#!lua
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '-1')
local size = tonumber(ARGV[1])
if size > n or (size == n and string.len(ARGV[4]) > 0 and redis.call('HEXISTS', KEYS[1], 'q') == 0) then
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'c', ARGV[2], 'd', ARGV[3])
  if string.len(ARGV[4]) > 0 then redis.call('HSET', KEYS[1], 'q', ARGV[4])
  else redis.call('HDEL', KEYS[1], 'q') end
  return 1
end
return 0
"""

# KEYS: info. ARGV: number (INCR of the stream counter, made by the caller), source, settings,
#       retention, created.
# The header alone, so the script stays in the stream's slot; the caller then lists the stream in the
# directory (a global key, on another shard of a cluster). `listed` = 1 marks a header made by this
# script and not being deleted: a second creator racing the first gets the first one's number (and
# its own INCR is simply never used), while a header left by a deletion that crashed half-way (no
# `listed`) is replaced whole, never mixed into the new stream.
# Returns the stream's number.
CREATE = """#!lua
if redis.call('HGET', KEYS[1], 'listed') == '1' then return tonumber(redis.call('HGET', KEYS[1], 'number')) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'number', ARGV[1], 'source', ARGV[2], 'settings', ARGV[3],
  'retention', ARGV[4], 'created', ARGV[5], 'committed', -1, 'first', 0,
  'b_tok', 0, 'b_emb', 0, 'b_prx', 0, 'b_meta', 0, 'listed', 1)
return tonumber(ARGV[1])
"""

# KEYS: info, then the token strings of segments compact_next, compact_next + 1, ...
# ARGV: expected compact_next, bytes to keep per token string, count.
# Returns the number of segments stepped over (-1 when compact_next moved meanwhile).
COMPACT = """#!lua
local info = KEYS[1]
local nxt = tonumber(redis.call('HGET', info, 'compact_next') or '0')
if nxt ~= tonumber(ARGV[1]) then return -1 end
local keep = tonumber(ARGV[2])
local freed = 0
for i = 2, #KEYS do
  local len = redis.call('STRLEN', KEYS[i])
  if len > keep then
    redis.call('SET', KEYS[i], redis.call('GETRANGE', KEYS[i], 0, keep - 1))
    freed = freed + len - keep
  end
end
redis.call('HSET', info, 'compact_next', nxt + tonumber(ARGV[3]))
redis.call('HINCRBY', info, 'b_tok', -freed)
return #KEYS - 1
"""

# KEYS: token strings. ARGV: last byte offset. Read-only: the prefix of each (empty when absent).
HEADS = """#!lua flags=no-writes
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('GETRANGE', key, 0, ARGV[1]) end
return out
"""

# The cold tier's swap (memory/cold.py): the shard bytes are already written and fsynced.
# KEYS: info, then (segment hash, tokens) per segment. ARGV: cold root, new cold_next (never moves
# back), stream number (a stream deleted and re-created meanwhile is left alone), then per segment
# (pointer, SHA-1 of the token head written, SHA-1 of the proxy written; of '' when none).
# Returns one status per segment: 1 moved, 0 left as it is (gone, already cold, or other bytes).
COLD_SWAP = """#!lua
local info = KEYS[1]
local out = {}
local n = (#KEYS - 1) / 2
if tostring(redis.call('HGET', info, 'number')) ~= ARGV[3] then
  for j = 1, n do out[j] = 0 end
  return out
end
redis.call('HSETNX', info, 'cold_root', ARGV[1])
local btok, bprx = 0, 0
for j = 0, n - 1 do
  local seg, tok = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local status = 0
  if redis.call('HEXISTS', seg, 'm') == 1 and redis.call('HEXISTS', seg, 'c') == 0 then
    local t = redis.call('GET', tok) or ''
    local p = redis.call('HGET', seg, 'p') or ''
    if redis.sha1hex(t) == ARGV[5 + 3 * j] and redis.sha1hex(p) == ARGV[6 + 3 * j] then
      -- Rebuilt rather than HDEL'd: a hash that once held a proxy keeps its large encoding, a
      -- new one without it may take Redis's compact (listpack) encoding.
      local kept = {}
      local fields = redis.call('HGETALL', seg)
      for f = 1, #fields, 2 do
        if fields[f] ~= 'p' then
          kept[#kept + 1] = fields[f]
          kept[#kept + 1] = fields[f + 1]
        end
      end
      kept[#kept + 1] = 'c'
      kept[#kept + 1] = ARGV[4 + 3 * j]
      redis.call('DEL', tok, seg)
      redis.call('HSET', seg, unpack(kept))
      btok = btok + string.len(t)
      bprx = bprx + string.len(p)
      status = 1
    end
  end
  out[j + 1] = status
end
redis.call('HINCRBY', info, 'b_tok', -btok)
redis.call('HINCRBY', info, 'b_prx', -bprx)
redis.call('HINCRBY', info, 'x_tok', btok)
redis.call('HINCRBY', info, 'x_prx', bprx)
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', info, 'cold_next') or '0') then
  redis.call('HSET', info, 'cold_next', ARGV[2])
end
return out
"""
