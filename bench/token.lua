-- wrk script: replays requests pre-signed with botocore's SigV4Auth (bench/presign.py).
--
--   wrk ... -s bench/token.lua URL -- RETURNING NEW NEW_EVERY LIMIT THREADS FLAG
--
-- RETURNING and NEW are files written by bench/presign.py ("-" for none): line 1 is
-- "METHOD<TAB>PATH", line 2 the header names, then one request per line: the header values
-- in that order and the body, tab-separated. Thread t of THREADS keeps the lines whose index
-- is t modulo THREADS. Requests are built in init(), when wrk knows the host: a request
-- formatted at the top level would go out without a Host header and fail SigV4.
--
-- NEW_EVERY = 0: only RETURNING, cycled (the same signed request may be sent again: the
-- broker has no replay protection, and a returning user asks again anyway). NEW_EVERY = 1:
-- only NEW, each sent once; NEW_EVERY = k: every k-th request is the next NEW one, the others
-- cycle RETURNING. When NEW runs out it starts over and `exhausted` counts every repeat:
-- those requests are no longer new users, and the harness flags such a run.
-- LIMIT > 0 stops each thread after LIMIT / THREADS responses (the memory run) and writes the
-- file FLAG.<thread>: wrk itself runs until its -d duration, so the harness, seeing every
-- thread's flag, ends it early with SIGINT (wrk then reports the time actually run).
-- done() prints one line "BENCH_RESULT {json}" with wrk's figures, the statuses counted in
-- response() and how many answers said "cached":true (POST /v1/token's token cache).

local returning, fresh = {}, {}
local i_ret, i_new, n = 0, 0, 0
local new_every, stop_after, flag = 0, 0, "-"
responses, exhausted, cached, statuses = 0, 0, 0, {}

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function load(path, index, count)
  local out = {}
  if path == "-" then
    return out
  end
  local host = wrk.host .. ":" .. wrk.port
  local method, target, names
  local k = 0
  for line in io.lines(path) do
    if not method then
      method, target = line:match("^([^\t]+)\t([^\t]+)$")
    elseif not names then
      names = split(line)
    else
      if k % count == index then
        local fields = split(line)
        local headers = {}
        for j = 1, #names do
          headers[names[j]] = fields[j]
        end
        if headers["Host"] ~= host then
          error("request signed for Host " .. tostring(headers["Host"]) .. ", sent to " .. host)
        end
        out[#out + 1] = wrk.format(method, target, headers, fields[#names + 1])
      end
      k = k + 1
    end
  end
  return out
end

function init(args)
  local count = tonumber(args[5])
  returning = load(args[1], tid, count)
  fresh = load(args[2], tid, count)
  new_every = tonumber(args[3])
  local limit = tonumber(args[4])
  flag = args[6] or "-"
  if limit > 0 then
    stop_after = math.ceil(limit / count)
  end
  if (new_every ~= 1 and #returning == 0) or (new_every > 0 and #fresh == 0) then
    error("thread " .. tid .. " has no requests to send")
  end
end

local function next_new()
  i_new = i_new + 1
  if i_new > #fresh then
    exhausted = exhausted + 1 -- a repeat: no longer a new user
    return fresh[(i_new - 1) % #fresh + 1]
  end
  return fresh[i_new]
end

function request()
  n = n + 1
  if new_every > 0 and n % new_every == 0 then
    return next_new()
  end
  i_ret = i_ret % #returning + 1
  return returning[i_ret]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  responses = responses + 1
  if body and body:find('"cached":true', 1, true) then
    cached = cached + 1 -- POST /v1/token answered from the token cache
  end
  if stop_after > 0 and responses == stop_after then
    if flag ~= "-" then
      local f = assert(io.open(flag .. "." .. tid, "w"))
      f:write(responses, "\n")
      f:close()
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local counts = {}
  local total_exhausted, total_cached = 0, 0
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, c in pairs(s) do
      counts[code] = (counts[code] or 0) + c
    end
    total_exhausted = total_exhausted + thread:get("exhausted")
    total_cached = total_cached + thread:get("cached")
  end
  local parts = {}
  for code, c in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', code, c)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"exhausted":%d,"cached":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, total_exhausted, total_cached, table.concat(parts, ",")))
end
