-- wrk_script.lua: the bearer key and a fresh X-Forwarded-For on every request; counts statuses.
-- args (after --): [1] raw API key, [2] address pool size, [3] first address index,
--                   [4] number of wrk threads
-- Thread t starts at first + t * pool / threads, so threads walk disjoint parts of the pool:
-- 10.a.b.c addresses, only header values (no traffic goes to them), each reused rarely enough
-- that no client IP comes near 200 requests per minute.
-- done() prints one line "BENCH_JSON {...}" that bench/load.py reads.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = args[1]
  pool = tonumber(args[2])
  cursor = tonumber(args[3]) + math.floor(tid * pool / tonumber(args[4]))
  statuses = {}
end

function request()
  local i = cursor % pool
  cursor = cursor + 1
  local xff = string.format("10.%d.%d.%d",
    math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. key, ["X-Forwarded-For"] = xff})
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('[%d, %d]', status, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "statuses": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, table.concat(counts, ", ")))
end
