-- wrk script of bench/sub.sh: GET <prefix><token><suffix>, rotating over the tokens of a
-- file (one per line). Each thread starts at its own place in the list. The requests are
-- formatted once, in init(), so wrk does no per-request string work.
--
-- Environment:
--   SUB_TOKENS  file of tokens (required)
--   SUB_PREFIX  path before the token (default /sub/)
--   SUB_SUFFIX  after the token, e.g. ?format=clash-meta (default empty)
--   SUB_UA      User-Agent header (default: none, as wrk sends none)
--
-- Prints one machine-readable line (the same as bench/lib.sh's get.lua):
--   RESULT requests=... bad_status=... (4xx/5xx) connect_err=... p50_us=... p99_us=...

local file = os.getenv("SUB_TOKENS") or error("SUB_TOKENS is not set")
local prefix = os.getenv("SUB_PREFIX") or "/sub/"
local suffix = os.getenv("SUB_SUFFIX") or ""
local ua = os.getenv("SUB_UA") or ""

local paths = {}
for line in io.lines(file) do
  if line ~= "" then paths[#paths + 1] = prefix .. line .. suffix end
end
if #paths == 0 then error("no tokens in " .. file) end
if ua ~= "" then wrk.headers["User-Agent"] = ua end

local threads = {}
tid = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local reqs, n, i = {}, 0, 0

function init(args)
  for k, p in ipairs(paths) do reqs[k] = wrk.format(nil, p) end
  n = #reqs
  i = (tid * 7919) % n -- a different starting point per thread (7919 is prime)
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%.0f duration_us=%.0f bad_status=%.0f connect_err=%.0f read_err=%.0f write_err=%.0f timeouts=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
