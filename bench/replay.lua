-- wrk script: replay pre-signed raw HTTP/1.1 requests (bench/harness.py writes them).
--
-- Usage: wrk -t T -c C -d Ds -s bench/replay.lua http://127.0.0.1:PORT/ -- FILE T [RATE]
--
-- FILE holds complete requests (request line, headers, body), each followed by one NUL
-- byte. Thread k of T sends requests k, k+T, k+2T, ... in order, so when the file holds at
-- least as many requests as the run sends, every request goes out exactly once (which
-- PutSecretValue needs: a repeated ClientRequestToken is an idempotent no-op). A thread
-- that runs out starts again from its first request and counts a wrap; `done` reports the
-- total so the caller can tell a replayed run from a fresh one.
--
-- Without RATE the loop is closed: each connection sends its next request as soon as the
-- previous answer arrives (the most the server can do). With RATE (requests/s in all) the
-- run is paced, and needs one connection per thread (T = C) so that a thread's hooks all
-- concern one connection: each connection sends on its own fixed schedule, one request
-- every C/RATE s, the C schedules staggered evenly. `delay` returns the milliseconds to the
-- next slot (0 when the slot has passed because the answer came late, so a slow server
-- builds a backlog as it would with independent clients). Latency is measured from the
-- slot, not from when the request went out (a late send must not hide the wait: no
-- coordinated omission), but from the send when that was earlier (wrk's timers have 1 ms
-- steps). The clock is CLOCK_MONOTONIC through LuaJIT's ffi (os.time has 1 s steps).
--
-- `done` prints one line, "RESULT {json}", with the counts and latency percentiles in
-- microseconds, for bench/harness.py to parse. Paced runs add "paced_*" fields: latency
-- from the slot, how late requests went out ("lag"), and how many went out more than one
-- interval late ("behind": the server, not the timer, held them up).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local now_us -- paced runs only

local function monotonic_clock()
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *ts);
  ]])
  local ts = ffi.new("bench_timespec")
  local CLOCK_MONOTONIC = 1
  return function()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end
end

-- Per thread (= per connection) state of a paced run.
interval = nil -- µs between this connection's slots (global: `done` reads it)
local phase -- this connection's offset on the grid all connections share
local slot -- the current request's slot (µs, monotonic)
local start -- when the current request counts as started: min(slot, actual send)
latencies = {} -- µs from start to the complete answer, one per request (read by `done`)
lags = {} -- µs from slot to actual send (0 when sent early)
delays = 0 -- calls of `delay`: proves wrk paced this run

local function paced_delay()
  local now = now_us()
  delays = delays + 1
  if slot == nil then -- the first slot on this connection's grid at or after now
    slot = phase + math.ceil((now - phase) / interval) * interval
  else
    slot = slot + interval
  end
  if slot <= now then return 0 end
  -- wrk's timers count whole milliseconds and fire up to 1 ms late: round down, so that
  -- sends are as often a little early (then measured from the send) as late.
  return math.floor((slot - now) / 1000)
end

local function paced_request()
  if slot == nil then return replayed_request() end -- wrk's check of the script, not sent
  local sent = now_us()
  start = math.min(sent, slot)
  lags[#lags + 1] = sent - start
  return replayed_request()
end

local function paced_response(status, headers, body)
  latencies[#latencies + 1] = now_us() - start
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  local rate = tonumber(args[3])
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local i, first = 0, 1
  while true do
    local stop = string.find(data, "\0", first, true)
    if not stop then break end
    if i % nthreads == id then reqs[#reqs + 1] = string.sub(data, first, stop - 1) end
    i = i + 1
    first = stop + 1
  end
  assert(#reqs > 0, "no requests for thread " .. id)
  n = #reqs
  pos = 0
  wraps = 0
  paced = rate ~= nil
  if paced then
    -- wrk looks for `delay`, `request` and `response` in thread 0's state after `init`,
    -- so defining them here turns pacing on for every thread.
    now_us = monotonic_clock()
    interval = 1e6 * nthreads / rate
    phase = interval * id / nthreads
    delay, request, response = paced_delay, paced_request, paced_response
  end
end

function replayed_request()
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return reqs[pos]
end

request = replayed_request

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wraps") end
  local paced = ""
  if threads[1]:get("paced") then
    local lat, lag, calls, behind = {}, {}, 0, 0
    for _, t in ipairs(threads) do
      for _, x in ipairs(t:get("latencies")) do lat[#lat + 1] = x end
      local late = t:get("interval")
      for _, x in ipairs(t:get("lags")) do
        lag[#lag + 1] = x
        if x > late then behind = behind + 1 end
      end
      calls = calls + t:get("delays")
    end
    table.sort(lat)
    table.sort(lag)
    paced = string.format(
      ', "paced_answers": %d, "paced_p50_us": %d, "paced_p90_us": %d, "paced_p99_us": %d, '
        .. '"paced_max_us": %d, "paced_lag_p50_us": %d, "paced_lag_p99_us": %d, '
        .. '"paced_behind": %d, "paced_delay_calls": %d',
      #lat, percentile(lat, 50), percentile(lat, 90), percentile(lat, 99),
      lat[#lat] or 0, percentile(lag, 50), percentile(lag, 99), behind, calls)
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "wraps": %d%s}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, w, paced))
end
