-- wrk script used by the Switchyard benchmarks: POST one fixed JSON body.
--
--   WRK_BODY_FILE=body.json WRK_AUTHORIZATION="Bearer sk-..." \
--     wrk -t1 -c32 -d8s -s bench/wrk_post.lua http://127.0.0.1:8080/api/v1/chat/completions
--
-- Optional WRK_HEADERS adds more request headers, one "Name: value" per line.
--
-- At the end it prints one machine-readable line, "BENCHJSON {...}", with the request count,
-- the error counts and the 50th/90th/99th latency percentiles in microseconds.

local body_file = assert(os.getenv("WRK_BODY_FILE"), "WRK_BODY_FILE is not set")
local handle = assert(io.open(body_file, "rb"))
wrk.method = "POST"
wrk.body = handle:read("*a")
handle:close()
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
local extra = os.getenv("WRK_HEADERS")
if extra then
  for line in extra:gmatch("[^\r\n]+") do
    local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then
      wrk.headers[name] = value
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,'
      .. '"timeouts":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max
  ))
end
