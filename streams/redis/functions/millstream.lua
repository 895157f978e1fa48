#!lua name=millstream
-- Every move of a task is one of these functions: atomic, and fenced where a
-- consumer acts on an entry it may no longer own. All keys are declared in
-- KEYS and share the pipeline's hash tag, so they also run on Redis Cluster.

-- Status records (field: request id, value: the task's last transition as
-- JSON, with its trail: see below) and dedup records (field: request id, value: its first entry id) live
-- in numbered buckets, hashes <prefix><n>: one HSET per batch instead of one
-- key per task. <prefix>head holds the current number `n` and when it opened
-- (`at`). A write opens the next bucket once the current one is a span old
-- (span = ttl/8; ttl = status_ttl or dedup_window); upkeep opens it sooner when
-- the current one holds its share of a count bound (ms_retain). Opening bucket
-- n deletes bucket n - KEPT, and every write makes its bucket expire ttl later.
-- So a record is kept at least ttl (its bucket is deleted only once KEPT - 1
-- newer ones opened, each a span after the one before) unless a count bound
-- dropped it sooner, at most about ttl * 9/8 under steady traffic, and a lookup
-- (streams.redis.tasks, ms_publish) reads KEPT buckets, newest first.
-- A status value holds the task's earlier transitions too (docs/decisions/0026):
-- {"stage","state","entry","at"[,"detail":{...}][,"trail":[older values, oldest
-- first]]}, each older value without its own trail. A write reads the current
-- bucket's values of its tasks (one HMGET) and appends; a task whose previous
-- value lies in an older bucket starts a new trail (a bucket spans ttl/8). The
-- trail is cut, oldest records first, to TRAIL_BYTES, by plain string.find of
-- two markers that only the record's own structure holds: a detail never holds
-- `,"trail":[` or `{"stage":"` (streams.redis.commit spaces them out).
-- Counts (Keys.counts, the status prefix with `status:` replaced by `counts`):
-- field <stage>/<state>, the transitions committed so far; one HINCRBY per state
-- per call.
-- Events: one entry per batch, field `t` listing [request_id, state, entry] of
-- every transition in it, in order. Stage names, states and entry ids need no
-- JSON escaping (stage names are checked by Keys).
local KEPT = 9
local TRAIL_BYTES = 16384  -- text of a trail, beyond which its oldest records are dropped
local TRAIL, RECORD = ',"trail":[', ',{"stage":"'

local function bucket_key(prefix, n)
  return prefix .. string.format('%.0f', n)
end

local function open_bucket(prefix, n, now)
  redis.call('HSET', prefix .. 'head', 'n', string.format('%.0f', n), 'at', now)
  redis.call('DEL', bucket_key(prefix, n - KEPT))
end

-- The number of the bucket to write to now; opens the next one when a span has passed.
local function current_bucket(prefix, now, span)
  local head = redis.call('HMGET', prefix .. 'head', 'n', 'at')
  local n, at = tonumber(head[1]), tonumber(head[2])
  if n == nil then
    -- first write: start where the time-numbered buckets of earlier versions are
    n = math.floor(tonumber(now) / span)
    redis.call('HSET', prefix .. 'head', 'n', string.format('%.0f', n), 'at', now)
  elseif tonumber(now) - at >= span then
    n = n + 1
    open_bucket(prefix, n, now)
  end
  return n
end

-- The entry envelope (streams.codec), written only here: a first attempt
-- carrying `data`; entries the bridge moved unread add `lg`, the list's name.
local function add_envelope(key, data, rid, t0)
  return redis.call('XADD', key, '*', 'v', '1', 'd', data, 'rid', rid, 'att', '1', 't0', t0)
end

local function add_moved(key, data, rid, t0, list)
  return redis.call('XADD', key, '*', 'v', '1', 'd', data, 'rid', rid, 'att', '1', 't0', t0, 'lg', list)
end

-- The status value of a transition is head .. entry .. tail .. (its trail or '}'),
-- head being status_prefix_of(stage, state) and tail status_tail(now[, detail]).
local function status_prefix_of(stage, state)
  return '{"stage":"' .. stage .. '","state":"' .. state .. '","entry":"'
end

local function status_tail(now, detail)
  if detail then return '","at":' .. now .. ',"detail":' .. detail end
  return '","at":' .. now
end

-- The value of a transition after `old` (the task's value in the current bucket, or
-- false): `old` less its trail is appended to that trail. One concatenation, at most
-- two substrings: the per-entry cost of a commit.
local function status_value(head, id, tail, old)
  if not old then return head .. id .. tail .. '}' end
  local m = string.find(old, TRAIL, 1, true)
  if not m then return head .. id .. tail .. TRAIL .. old .. ']}' end
  -- the new trail: old's trail records (from `from` to #old - 2), ',', old's own record
  -- (its first m - 1 bytes and '}'): #old - 10 bytes in all
  local from, excess = m + #TRAIL, #old - #TRAIL - TRAIL_BYTES
  if excess > 0 then  -- drop whole records up to the first boundary at or past the excess
    local cut = string.find(old, RECORD, from + excess - 1, true)
    if not cut then return head .. id .. tail .. TRAIL .. string.sub(old, 1, m - 1) .. '}]}' end
    from = cut + 1
  end
  return head .. id .. tail .. TRAIL .. string.sub(old, from, -3) .. ',' .. string.sub(old, 1, m - 1) .. '}]}'
end

-- The status records of n transitions: request id rids[k], and its value's parts
-- heads[k], ids[k], tails[k] (see status_value). One HMGET per call reads the old
-- values (in parts of UNPACK_MAX only past that many entries: Lua's unpack limit).
local UNPACK_MAX = 4000
local function write_status(status_prefix, now, ttl, rids, heads, ids, tails, n)
  local span = math.max(1, math.floor(ttl / 8))
  local status_key = bucket_key(status_prefix, current_bucket(status_prefix, now, span))
  local old = {}
  for i = 1, n, UNPACK_MAX do
    local part = redis.call('HMGET', status_key, unpack(rids, i, math.min(i + UNPACK_MAX - 1, n)))
    for k = 1, #part do old[i + k - 1] = part[k] end
  end
  local fields, latest = {}, {}  -- latest: a task written twice in one call gets both records
  for k = 1, n do
    local rid = rids[k]
    local value = status_value(heads[k], ids[k], tails[k], latest[rid] or old[k])
    fields[2 * k - 1], fields[2 * k], latest[rid] = rid, value, value
  end
  for i = 1, #fields, 1000 do
    redis.call('HSET', status_key, unpack(fields, i, math.min(i + 999, #fields)))
  end
  redis.call('PEXPIRE', status_key, ttl)
end

-- One HINCRBY per distinct state: states[k] is the state of the k-th transition.
local function add_counts(counts, stage, states, n)
  local tally = {}
  for k = 1, n do
    local state = states[k]
    tally[state] = (tally[state] or 0) + 1
  end
  for state, count in pairs(tally) do redis.call('HINCRBY', counts, stage .. '/' .. state, count) end
end

-- Keys.counts, derived from the status prefix as the dedup prefix is (same hash tag).
local function counts_of(status_prefix)
  return string.sub(status_prefix, 1, -8) .. 'counts'
end

local function add_event(events, maxlen, stage, now, transitions)
  redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'stage', stage, 'at', now, 't', transitions)
end

-- done: {request_id, state, entry} per transition.
local function record(status_prefix, events, maxlen, stage, now, ttl, done)
  if #done == 0 then return end
  local rids, heads, ids, tails, states, tail = {}, {}, {}, {}, {}, status_tail(now)
  for i, d in ipairs(done) do
    rids[i], heads[i], ids[i], tails[i], states[i] = d[1], status_prefix_of(stage, d[2]), d[3], tail, d[2]
  end
  write_status(status_prefix, now, ttl, rids, heads, ids, tails, #done)
  add_counts(counts_of(status_prefix), stage, states, #done)
  add_event(events, maxlen, stage, now, cjson.encode(done))
end

local function owned(src, group, consumer, id)
  return #redis.call('XPENDING', src, group, id, id, 1, consumer) == 1
end

local function parse_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function id_less(a, b)
  local ams, aseq = parse_id(a)
  local bms, bseq = parse_id(b)
  return ams < bms or (ams == bms and aseq < bseq)
end

-- The ids among `ids` pending for `consumer`, as a set: one XPENDING over
-- their range instead of one per id. `limit` bounds what the range can hold.
local function owned_set(src, group, consumer, ids, limit)
  local low, high = ids[1], ids[1]
  for _, id in ipairs(ids) do
    if id_less(id, low) then low = id end
    if id_less(high, id) then high = id end
  end
  local set = {}
  for _, p in ipairs(redis.call('XPENDING', src, group, low, high, limit, consumer)) do
    set[p[1]] = true
  end
  return set
end

local function ack(src, group, ids)
  for i = 1, #ids, 500 do
    redis.call('XACK', src, group, unpack(ids, i, math.min(i + 499, #ids)))
  end
end

-- Fence tokens. An entry leaves a consumer's pending list only by that
-- consumer's XACK or by a claim (claim() below). Every claim stores a fresh
-- token in the fences hash for each consumer it took entries from. A consumer
-- tags what it reads with the token it knew before reading; while that is still
-- the current token, nothing read under it has been taken away, and ms_commit
-- skips the per-entry XPENDING check, the costliest part of a commit.
local function fence_field(src, group, consumer)
  return src .. '/' .. group .. '/' .. consumer
end

local function bump_fences(fences, src, group, owners)
  if next(owners) == nil then return end
  local clock = redis.call('TIME')
  local token = clock[1] .. '.' .. clock[2] .. '-' .. redis.call('HINCRBY', fences, '#', 1)
  for owner in pairs(owners) do
    redis.call('HSET', fences, fence_field(src, group, owner), token)
  end
end

-- How many ARGV slots an op takes, by its code (see ms_commit).
local OP_SIZE = {e = 5, z = 4, l = 3}

-- ms_commit: KEYS = source, events, fences, counts, targets...
-- ARGV = group, consumer, now_ms, status_ttl_ms, events_maxlen, stage, status_prefix,
--        token, limit (at least how many entries this consumer can hold),
--        transitions (the event's `t`: JSON [request_id, state, entry_id] of every entry),
--        n_suspect, suspect entry numbers (1-based)..., then the entries, in order, each
--        entry_id, request_id, state, n_ops, ops...
--        or, for a transition with a detail (a JSON object for its status record),
--        'D', detail, entry_id, request_id, state, n_ops, ops...
--        except for runs of the common case (never with a detail), in short:
--        'F', key_index, count, then per entry: entry_id, request_id, payload, origin_ms
--        (state 'forwarded', one op: 'e', key_index, payload, request_id, origin_ms)
-- ops: 'e', key_index, payload, request_id, origin_ms  XADD an envelope (attempt 1)
--      'x', key_index, n, values...                    XADD key * values...
--      'z', key_index, score, member                   ZADD key score member
--      'l', key_index, value                           RPUSH key value (a legacy list mirror)
-- Runs spare Redis two arguments per entry: each costs it a Lua string.
-- An entry is checked against this consumer's pending list (fencing) when it
-- is suspect (read under an older token) or when `token` is no longer current.
-- Status buckets are status_prefix .. bucket number: they share the pipeline's
-- hash tag with KEYS, so they live in the same cluster slot.
-- Returns {current token, numbers of the entries fenced off (not ours: skipped)...}.
local RUN_ENTRY = 4  -- ARGV slots per entry of a run

-- Where the entry after the one at `pos` (not a run, past its 'D' and detail) starts.
local function next_entry(args, pos)
  local p = pos + 4
  for _ = 1, tonumber(args[p - 1]) do
    p = p + (OP_SIZE[args[p]] or 3 + tonumber(args[p + 2]))
  end
  return p
end

-- The entries of a commit that need the ownership check, as a set of ids:
-- all of them when the token changed, else those read under an older one.
local function suspects(args, first, n_suspect, all)
  local wanted, ids, set, i, pos = {}, {}, {}, 0, first
  for k = 1, n_suspect do wanted[tonumber(args[11 + k])] = true end
  local function visit(id)
    i = i + 1
    if all or wanted[i] then
      ids[#ids + 1] = id
      set[id] = true
    end
  end
  while pos <= #args do
    if args[pos] == 'F' then
      local last = pos + 3 + RUN_ENTRY * tonumber(args[pos + 2])
      for q = pos + 3, last - 1, RUN_ENTRY do visit(args[q]) end
      pos = last
    else
      if args[pos] == 'D' then pos = pos + 2 end
      visit(args[pos])
      pos = next_entry(args, pos)
    end
  end
  return set, ids
end

local function commit(keys, args)
  local src, events, fences, counts = keys[1], keys[2], keys[3], keys[4]
  local group, consumer, now, ttl, maxlen, stage = args[1], args[2], args[3], args[4], args[5], args[6]
  local status_prefix, token, limit, n_suspect = args[7], args[8], args[9], tonumber(args[11])
  local current = redis.call('HGET', fences, fence_field(src, group, consumer)) or ''
  local first = 12 + n_suspect
  local suspect, mine = {}, {}
  if current ~= token or n_suspect > 0 then  -- else the common case: one pass, no XPENDING
    local ids
    suspect, ids = suspects(args, first, n_suspect, current ~= token)
    if #ids > 0 then mine = owned_set(src, group, consumer, ids, limit) end
  end
  -- Built per entry by write_status, the status values are the one string a commit
  -- must make per entry; the event's JSON comes from the caller (args[10]).
  local tail, forwarded = status_tail(now), status_prefix_of(stage, 'forwarded')
  local fenced, acked, states, rids, heads, tails, i, p, n = {current}, {}, {}, {}, {}, {}, 0, first, 0
  while p <= #args do
    if args[p] == 'F' then
      local key, last = keys[tonumber(args[p + 1])], p + 3 + RUN_ENTRY * tonumber(args[p + 2])
      for q = p + 3, last - 1, RUN_ENTRY do
        i = i + 1
        local id, rid = args[q], args[q + 1]
        if suspect[id] and not mine[id] then
          fenced[#fenced + 1] = i
        else
          add_envelope(key, args[q + 2], rid, args[q + 3])
          n = n + 1
          acked[n], states[n], rids[n], heads[n], tails[n] = id, 'forwarded', rid, forwarded, tail
        end
      end
      p = last
    else
      local detail = nil
      if args[p] == 'D' then detail, p = args[p + 1], p + 2 end
      i = i + 1
      local id, rid, state = args[p], args[p + 1], args[p + 2]
      if suspect[id] and not mine[id] then
        fenced[#fenced + 1] = i
        p = next_entry(args, p)
      else
        p = p + 4
        for _ = 1, tonumber(args[p - 1]) do
          local code, key = args[p], keys[tonumber(args[p + 1])]
          if code == 'e' then
            add_envelope(key, args[p + 2], args[p + 3], args[p + 4])
          elseif code == 'x' then
            local n = tonumber(args[p + 2])
            redis.call('XADD', key, '*', unpack(args, p + 3, p + 2 + n))
          elseif code == 'l' then
            redis.call('RPUSH', key, args[p + 2])
          else
            redis.call('ZADD', key, args[p + 2], args[p + 3])
          end
          p = p + (OP_SIZE[code] or 3 + tonumber(args[p + 2]))
        end
        n = n + 1
        acked[n], states[n], rids[n], heads[n] = id, state, rid, status_prefix_of(stage, state)
        tails[n] = detail and status_tail(now, detail) or tail
      end
    end
  end
  if n == 0 then return fenced end
  ack(src, group, acked)
  write_status(status_prefix, now, ttl, rids, heads, acked, tails, n)
  add_counts(counts, stage, states, n)
  local transitions = args[10]
  if #fenced > 1 then  -- the caller's list names entries fenced off: list what was done
    local done = {}
    for k = 1, n do done[k] = {rids[k], states[k], acked[k]} end
    transitions = cjson.encode(done)
  end
  add_event(events, maxlen, stage, now, transitions)
  return fenced
end

-- The entry id recorded for `rid` in the KEPT dedup buckets up to `n`, newest first, or false.
local function seen_entry(prefix, n, rid)
  for b = n, n - KEPT + 1, -1 do
    local id = redis.call('HGET', bucket_key(prefix, b), rid)
    if id then return id end
  end
  return false
end

-- ms_publish: KEYS = stream, events, then per item the stream it goes to (the stream
-- itself, or the lane of its priority: streams.priority). Dedup records live in the
-- buckets at Keys.seen_prefix, which is the status prefix with `status:` replaced
-- by `seen:`; same hash tag, so the same cluster slot.
-- ARGV = now_ms, window_ms, status_ttl_ms, events_maxlen, stage, status_prefix, n, then per item:
--   request_id, dedup (0/1), n_values, values...
-- Returns the entry id per item: the first entry's id for a repeated request_id.
local function publish(keys, args)
  local events = keys[2]
  local now, window, ttl, maxlen, stage, status_prefix = args[1], args[2], args[3], args[4], args[5], args[6]
  local n, pos, ids, done = tonumber(args[7]), 8, {}, {}
  local seen_prefix = string.sub(status_prefix, 1, -8) .. 'seen:'
  local seen_n, seen_key = nil, nil  -- the current dedup bucket, found at the first item that asks
  for i = 1, n do
    local rid, dedup, n_values = args[pos], args[pos + 1], tonumber(args[pos + 2])
    local existing = false
    if dedup == '1' then
      if seen_n == nil then
        seen_n = current_bucket(seen_prefix, now, math.max(1, math.floor(tonumber(window) / 8)))
        seen_key = bucket_key(seen_prefix, seen_n)
      end
      existing = seen_entry(seen_prefix, seen_n, rid)
    end
    if existing then
      ids[i] = existing
    else
      local id = redis.call('XADD', keys[2 + i], '*', unpack(args, pos + 3, pos + 2 + n_values))
      if dedup == '1' then redis.call('HSET', seen_key, rid, id) end
      done[#done + 1] = {rid, 'queued', id}
      ids[i] = id
    end
    pos = pos + 3 + n_values
  end
  if seen_key ~= nil then redis.call('PEXPIRE', seen_key, window) end  -- a no-op if nothing was new
  record(status_prefix, events, maxlen, stage, now, ttl, done)
  return ids
end

-- ms_retain: KEYS = status head, dedup head (Keys.status_head, Keys.seen_head);
-- ARGV = now_ms, status count bound, dedup count bound (0: none).
-- The count bounds, run by upkeep (streams.redis.retention): opens the next bucket of
-- a kind whose current bucket holds a ninth of its bound or more (which deletes
-- the oldest), then deletes the oldest older buckets while they all hold more
-- than the bound (a bucket fuller than a ninth: more arrived between two runs).
-- O(KEPT) commands. Returns {status records, dedup records}: what is kept after.
local function retain(keys, args)
  local out = {}
  for k = 1, 2 do
    local prefix, bound = string.sub(keys[k], 1, -5), tonumber(args[k + 1])
    local n, total = tonumber(redis.call('HGET', keys[k], 'n')), 0
    if n ~= nil then
      local cap = math.max(1, math.floor(bound / KEPT))
      if bound > 0 and redis.call('HLEN', bucket_key(prefix, n)) >= cap then
        n = n + 1
        open_bucket(prefix, n, args[1])
      end
      local sizes = {}
      for b = n - KEPT + 1, n do
        sizes[b] = redis.call('HLEN', bucket_key(prefix, b))
        total = total + sizes[b]
      end
      local b = n - KEPT + 1
      while bound > 0 and total > bound and b < n do
        if sizes[b] > 0 then redis.call('DEL', bucket_key(prefix, b)) end
        total, b = total - sizes[b], b + 1
      end
    end
    out[k] = total
  end
  return out
end

-- ms_promote: KEYS = delayed zset, stream; ARGV = now_ms, limit.
-- Moves retries that are due back into their stream; returns how many moved.
local function promote(keys, args)
  local due = redis.call('ZRANGE', keys[1], '-inf', args[1], 'BYSCORE', 'LIMIT', 0, args[2])
  for _, member in ipairs(due) do
    redis.call('XADD', keys[2], '*', unpack(cjson.decode(member)))
    redis.call('ZREM', keys[1], member)
  end
  return #due
end

local function claim(src, fences, group, consumer, pending)
  if #pending == 0 then return {} end
  local ids, counts, owners = {}, {}, {}
  for i, p in ipairs(pending) do
    ids[i] = p[1]
    counts[p[1]] = p[4] + 1
    if p[2] ~= consumer then owners[p[2]] = true end
  end
  bump_fences(fences, src, group, owners)
  local claimed, out, missing = redis.call('XCLAIM', src, group, consumer, 0, unpack(ids)), {}, {}
  local seen = {}
  for _, entry in ipairs(claimed) do
    if entry then
      out[#out + 1] = {entry[1], entry[2], counts[entry[1]]}
      seen[entry[1]] = true
    end
  end
  -- An entry deleted from the stream while pending cannot be processed: drop it from the PEL.
  for _, id in ipairs(ids) do
    if not seen[id] then missing[#missing + 1] = id end
  end
  ack(src, group, missing)
  return out
end

-- ms_claim_dead: KEYS = stream, heartbeat key of the dead consumer, fences;
-- ARGV = group, dead consumer, me, count. Claims the dead consumer's entries if
-- its heartbeat is gone, and deletes it once it owns nothing.
-- Returns {{id, fields, deliveries}, ...}.
local function claim_dead(keys, args)
  if redis.call('EXISTS', keys[2]) == 1 then return {} end
  local src, group, dead, me = keys[1], args[1], args[2], args[3]
  local pending = redis.call('XPENDING', src, group, '-', '+', args[4], dead)
  local out = claim(src, keys[3], group, me, pending)
  if #redis.call('XPENDING', src, group, '-', '+', 1, dead) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', src, group, dead)
  end
  return out
end

-- ms_claim_stale: KEYS = stream, fences; ARGV = group, me, min_idle_ms, count.
-- Claims entries other consumers have held longer than min_idle (a deadline).
local function claim_stale(keys, args)
  local src, group, me = keys[1], args[1], args[2]
  local pending = redis.call('XPENDING', src, group, 'IDLE', args[3], '-', '+', args[4])
  local others = {}
  for _, p in ipairs(pending) do
    if p[2] ~= me then others[#others + 1] = p end
  end
  return claim(src, keys[2], group, me, others)
end

-- ms_claim_mine: KEYS = stream, fences; ARGV = group, me, start (exclusive, '-' first), count.
-- Re-delivers this consumer's own pending entries after a restart, oldest first.
local function claim_mine(keys, args)
  local src, group, me = keys[1], args[1], args[2]
  local start = args[3] == '-' and '-' or '(' .. args[3]
  return claim(src, keys[2], group, me, redis.call('XPENDING', src, group, start, '+', args[4], me))
end

-- ms_claim_lost: KEYS = stream, fences; ARGV = group, me, ids...
-- Re-delivers those of `ids` still pending for this consumer: entries a read
-- or a claim gave it in Redis whose reply was lost on the way (a dropped
-- connection), so the consumer never knew it held them.
local function claim_lost(keys, args)
  local src, group, me, pending = keys[1], args[1], args[2], {}
  for i = 3, #args do
    local p = redis.call('XPENDING', src, group, args[i], args[i], 1, me)
    if #p == 1 then pending[#pending + 1] = p[1] end
  end
  return claim(src, keys[2], group, me, pending)
end

-- ms_renew: KEYS = stream; ARGV = group, me, ids... Resets the idle time of the
-- entries still ours (a lease renewal); returns the ids renewed.
local function renew(keys, args)
  local src, group, me, ids = keys[1], args[1], args[2], {}
  for i = 3, #args do
    if owned(src, group, me, args[i]) then ids[#ids + 1] = args[i] end
  end
  if #ids == 0 then return {} end
  return redis.call('XCLAIM', src, group, me, 0, unpack(ids), 'JUSTID')
end

local function next_id(id)
  local ms, seq = parse_id(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end

-- ms_trim: KEYS = stream. Removes entries every group has acknowledged: below
-- the oldest pending entry and below the first undelivered one of every group.
-- A stream without groups is left alone. Returns the number of entries removed.
local function trim(keys)
  local src = keys[1]
  if redis.call('EXISTS', src) == 0 then return 0 end
  local groups, floor = redis.call('XINFO', 'GROUPS', src), nil
  if #groups == 0 then return 0 end
  for _, flat in ipairs(groups) do
    local g = {}
    for i = 1, #flat, 2 do g[flat[i]] = flat[i + 1] end
    local keep = next_id(g['last-delivered-id'])
    if g['pending'] > 0 then keep = redis.call('XPENDING', src, g['name'])[2] end
    if floor == nil or id_less(keep, floor) then floor = keep end
  end
  return redis.call('XTRIM', src, 'MINID', floor)
end

-- ms_replay: KEYS = dlq, events, audit, then one target stream per entry
-- ARGV = now_ms, status_ttl_ms, events_maxlen, status_prefix, audit_json, batch
-- batch (JSON): [[dlq_id, request_id, [values...]], ...]: entry i goes to KEYS[3 + i].
-- A dead letter is moved (XADD to its target, XDEL from the DLQ) only if it is
-- still in the DLQ, so the same replay run twice, or by two operators at once,
-- enqueues it once. Returns the dlq ids moved; the audit entry lists them.
local function replay(keys, args)
  local dlq, events, audit = keys[1], keys[2], keys[3]
  local now, ttl, maxlen, status_prefix = args[1], args[2], args[3], args[4]
  local moved, done = {}, {}
  for i, entry in ipairs(cjson.decode(args[6])) do
    local id = entry[1]
    if #redis.call('XRANGE', dlq, id, id) == 1 then
      local new_id = redis.call('XADD', keys[3 + i], '*', unpack(entry[3]))
      redis.call('XDEL', dlq, id)
      moved[#moved + 1] = id
      done[#done + 1] = {entry[2], 'replayed', new_id}
    end
  end
  if #moved > 0 then
    record(status_prefix, events, maxlen, 'dlq', now, ttl, done)
    redis.call('XADD', audit, '*', 'action', 'replay', 'at', now, 'detail', args[5],
               'count', #moved, 'ids', cjson.encode(moved))
  end
  return moved
end

-- ms_purge: KEYS = dlq, audit; ARGV = now_ms, audit_json, ids...
-- Deletes the dead letters still present; returns how many, with an audit entry.
local function purge(keys, args)
  local removed = {}
  for i = 3, #args do
    if redis.call('XDEL', keys[1], args[i]) == 1 then removed[#removed + 1] = args[i] end
  end
  if #removed > 0 then
    redis.call('XADD', keys[2], '*', 'action', 'purge', 'at', args[1], 'detail', args[2],
               'count', #removed, 'ids', cjson.encode(removed))
  end
  return #removed
end

-- Strict UTF-8 (no overlongs, no surrogates): cjson does not check, orjson does.
-- Per byte in Lua (about 60 ms per MiB): only for the short texts ms_ingress writes itself.
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len = (c < 0x80 and 1) or (c >= 0xC2 and c < 0xE0 and 2) or (c >= 0xE0 and c < 0xF0 and 3)
                or (c >= 0xF0 and c < 0xF5 and 4) or 0
    if len == 0 or i + len - 1 > n then return false end
    local low, high = 0x80, 0xBF
    if c == 0xE0 then low = 0xA0 elseif c == 0xED then high = 0x9F
    elseif c == 0xF0 then low = 0x90 elseif c == 0xF4 then high = 0x8F end
    for j = i + 1, i + len - 1 do
      local b = string.byte(s, j)
      if b < low or b > high then return false end
      low, high = 0x80, 0xBF
    end
    i = i + len
  end
  return true
end

local REFUSED_PREFIX = 256   -- bytes of a refused item kept in its error record
local ID_WINDOW = 4096       -- bytes of a refused item searched for its ids
local MAX_LABEL = 256        -- longer ids are not read here (the reading stage reads them)

-- `s` as valid UTF-8: a character cut at the end is dropped, other junk bytes become '?'.
local function utf8_text(s)
  for cut = 0, 3 do
    local t = string.sub(s, 1, #s - cut)
    if valid_utf8(t) then return t end
  end
  return (string.gsub(s, '[\128-\255]', '?'))
end

-- An id read by a pattern, if short and valid UTF-8; else nil.
local function short_id(id)
  if id and #id > 0 and #id <= MAX_LABEL and valid_utf8(id) then return id end
  return nil
end

-- The item's request_id when the item opens with it as a plain string or an
-- integer: bounded work (the match is anchored), exact text. Only a label for
-- the status record: the stage reading the stream takes the id from the item.
local function label_of(raw)
  local head = string.sub(raw, 1, 512)
  return short_id(string.match(head, '^%s*{%s*"request_id"%s*:%s*"([^"\\]*)"'))
      or short_id(string.match(head, '^%s*{%s*"request_id"%s*:%s*(%-?%d+)[%s,}]'))
end

-- An id named `name` anywhere in `window`, as a plain string or a number's literal.
-- Names are the pipeline's id fields (letters, digits, _ . -, checked by
-- streams.names): their punctuation is escaped, so `.` and `-` match themselves.
local function find_id(window, name)
  local quoted = '"' .. string.gsub(name, '%p', '%%%0') .. '"'
  return short_id(string.match(window, quoted .. '%s*:%s*"([^"\\]*)"'))
      or short_id(string.match(window, quoted .. '%s*:%s*(%-?[%w%.%+%-]+)'))
end

-- The error record of an item over `limit` bytes: its first bytes, its size and
-- the ids named `names` (the pipeline's id fields) found near its start, not the item.
local function refusal(list, stage, now, raw, limit, rid, names)
  local window = string.sub(raw, 1, ID_WINDOW)
  local ids, payload = {}, {raw = utf8_text(string.sub(raw, 1, REFUSED_PREFIX)), raw_bytes = #raw}
  for _, name in ipairs(names) do
    ids[name] = find_id(window, name) or cjson.null
  end
  for _, name in ipairs(names) do
    payload[name] = ids[name]
  end
  return cjson.encode({
    request_id = rid, timestamp = math.floor(tonumber(now) / 1000), stage = stage,
    error_message = 'task refused from list ' .. list .. ': it is ' .. #raw ..
      ' bytes, over the limit of ' .. limit .. ' bytes (MILLSTREAM_MAX_PAYLOAD_BYTES); ' ..
      'store large data elsewhere and send a reference',
    entry_id = cjson.null, stream = list, ids = ids, payload = payload})
end

-- ms_ingress: KEYS = list, stream, events, errors
-- ARGV = now_ms, count, status_ttl_ms, events_maxlen, status_prefix, stage,
--        max_item_bytes, max_call_bytes, id_field...
-- Pops tasks from the head of the list (where BLPOP took them), one at
-- a time, and appends each to the stream in the same atomic call, so a crash
-- of the bridge neither loses nor repeats a task. Stops after `count` items, or
-- once the items popped add up to `max_call_bytes`, so one call moves at most
-- max_call_bytes plus one item. Items are moved unread, field `lg` naming the
-- list: the stage reading the stream validates them (streams.codec), since
-- reading JSON here costs Redis milliseconds per MiB
-- (docs/decisions/0017-bridge-moves-items-unread.md). An item over
-- max_item_bytes is not copied: it becomes an error record keeping its first
-- bytes, its size and the ids (fields named id_field...) found near its start.
-- Returns how many items left the list.
local function ingress(keys, args)
  local now, count, stage = args[1], tonumber(args[2]), args[6]
  local max_item, max_call = tonumber(args[7]), tonumber(args[8])
  local names = {unpack(args, 9)}
  local clock, done, moved, n = redis.call('TIME'), {}, 0, 0
  while n < count and moved < max_call do
    local raw = redis.call('LPOP', keys[1])
    if not raw then break end
    n, moved = n + 1, moved + #raw
    local rid = label_of(raw) or ('legacy-' .. clock[1] .. clock[2] .. '-' .. n)
    if #raw > max_item then
      local record_json = refusal(keys[1], stage, now, raw, max_item, rid, names)
      local id = add_envelope(keys[4], record_json, rid, now)
      done[#done + 1] = {rid, 'failed', id}
    else
      local id = add_moved(keys[2], raw, rid, now, keys[1])
      done[#done + 1] = {rid, 'queued', id}
    end
  end
  record(args[5], keys[3], args[4], stage, now, args[3], done)
  return n
end

-- ms_forget: KEYS = a status bucket, then the older buckets; ARGV = request_id, head, ...
-- Deletes each record of the bucket that still starts with `head` (its
-- {"stage","state","entry","at" as read: one written since is kept), and the
-- task's records in the older buckets, which would otherwise show through
-- (streams.redis.tasks.clean). Returns how many records of the bucket went.
local function forget(keys, args)
  local removed = 0
  for i = 1, #args, 2 do
    local rid, head = args[i], args[i + 1]
    local value = redis.call('HGET', keys[1], rid)
    if value and string.sub(value, 1, #head) == head then
      for k = 1, #keys do redis.call('HDEL', keys[k], rid) end
      removed = removed + 1
    end
  end
  return removed
end

-- Owned streams: a stream (a partition of a keyed stage, or its router's source) that one
-- consumer at a time reads, holding a lease (a string, value: the consumer, PX: the
-- heartbeat TTL). Reads and claims check the lease here, atomically, so a consumer that
-- lost it (stalled past its TTL, then woke) reads nothing more; the new holder claims
-- every pending entry of the group at once, bumping the fences of their holders, so
-- their late commits are skipped whole (docs/controls/keyed.md).

-- ms_lease: KEYS = lease; ARGV = me, ttl_ms, mode: 'take' (if free: 'taken'; if mine:
-- renewed, 'kept'), 'renew' (if mine: 'kept') or 'release' (if mine: deleted, 'released').
-- Returns false when another consumer holds it.
local function lease(keys, args)
  local holder, me, ttl, mode = redis.call('GET', keys[1]), args[1], args[2], args[3]
  if holder and holder ~= me then return false end
  if mode == 'release' then
    if holder then redis.call('DEL', keys[1]) end
    return 'released'
  end
  if not holder and mode == 'renew' then return false end
  redis.call('SET', keys[1], me, 'PX', ttl)
  return holder and 'kept' or 'taken'
end

-- ms_claim_owned: KEYS = stream, lease, fences; ARGV = group, me, start (exclusive, '-'
-- first), count. If the lease is mine, claims up to count entries pending for anyone
-- in the group (mine from an earlier run too), oldest first; else false.
local function claim_owned(keys, args)
  if redis.call('GET', keys[2]) ~= args[2] then return false end
  local src, group, me = keys[1], args[1], args[2]
  local start = args[3] == '-' and '-' or '(' .. args[3]
  return claim(src, keys[3], group, me, redis.call('XPENDING', src, group, start, '+', args[4]))
end

-- ms_read_owned: KEYS = stream, lease; ARGV = group, me, count. If the lease is mine,
-- reads up to count new entries (XREADGROUP, never blocking); else false.
-- Returns {{id, fields}, ...}.
local function read_owned(keys, args)
  if redis.call('GET', keys[2]) ~= args[2] then return false end
  local reply = redis.call('XREADGROUP', 'GROUP', args[1], args[2], 'COUNT', args[3], 'STREAMS', keys[1], '>')
  if not reply then return {} end
  return reply[1][2]
end

redis.register_function('ms_commit', commit)
redis.register_function('ms_ingress', ingress)
redis.register_function('ms_replay', replay)
redis.register_function('ms_purge', purge)
redis.register_function('ms_publish', publish)
redis.register_function('ms_retain', retain)
redis.register_function('ms_promote', promote)
redis.register_function('ms_claim_dead', claim_dead)
redis.register_function('ms_claim_stale', claim_stale)
redis.register_function('ms_claim_mine', claim_mine)
redis.register_function('ms_claim_lost', claim_lost)
redis.register_function('ms_renew', renew)
redis.register_function('ms_trim', trim)
redis.register_function('ms_forget', forget)
redis.register_function('ms_lease', lease)
redis.register_function('ms_claim_owned', claim_owned)
redis.register_function('ms_read_owned', read_owned)
