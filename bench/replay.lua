-- wrk script: replay pre-signed raw HTTP/1.1 requests (bench/harness.py writes them).
--
-- Usage: wrk -t T -c C -d Ds -s bench/replay.lua http://127.0.0.1:PORT/ -- FILE T
--
-- FILE holds complete requests (request line, headers, body), each followed by one NUL
-- byte. Thread k of T sends requests k, k+T, k+2T, ... in order, so when the file holds at
-- least as many requests as the run sends, every request goes out exactly once (which
-- PutSecretValue needs: a repeated ClientRequestToken is an idempotent no-op). A thread
-- that runs out starts again from its first request and counts a wrap; `done` reports the
-- total so the caller can tell a replayed run from a fresh one.
--
-- `done` prints one line, "RESULT {json}", with the counts and latency percentiles in
-- microseconds, for bench/harness.py to parse.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local i, start = 0, 1
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then break end
    if i % nthreads == id then reqs[#reqs + 1] = string.sub(data, start, stop - 1) end
    i = i + 1
    start = stop + 1
  end
  assert(#reqs > 0, "no requests for thread " .. id)
  n = #reqs
  pos = 0
  wraps = 0
end

function request()
  pos = pos + 1
  if pos > n then
    pos = 1
    wraps = wraps + 1
  end
  return reqs[pos]
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wraps") end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "wraps": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, w))
end
