#!/usr/bin/env bash
# API benchmark of the MRJBot control plane, next to nginx serving a 1 KB static file on
# the same machine in the same run (the machine's ceiling).
#
# Measures, with 100,000 users seeded: start-to-first-200, idle RSS (and RSS after the
# load), `GET /api/v1/users?limit=100` requests/s and p99, users created per second
# through the API (Telegram customers, and separately with an Argon2id password), then
# prints a summary table against the targets and the Marzban / PasarGuard figures.
#
# Usage: bench/api.sh [--engine sqlite|postgres]... [--users N] [--duration SECONDS]
#        ENGINES="sqlite postgres" bench/api.sh
# See bench/README.md for every knob. Talks to loopback only; every load run is bounded
# in time; every process and temporary directory it starts is removed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh" # log/info/die, tools, build, workspace, wrk runs, nginx, PostgreSQL

# ---------------------------------------------------------------------------- settings
USERS="${BENCH_USERS:-100000}"          # users seeded before measuring
NAMED_USERS="${BENCH_NAMED_USERS:-20}"  # of which this many also have a username
DURATION="${DURATION:-10}"              # seconds of each measured wrk run
WARMUP="${WARMUP:-2}"                   # seconds of unreported warm-up before each run
THREADS="${THREADS:-2}"                 # wrk threads
CONNECTIONS="${CONNECTIONS:-64}"        # wrk connections
START_RUNS="${START_RUNS:-5}"           # start-to-first-200 repetitions (median printed)
IDLE_SECONDS="${IDLE_SECONDS:-3}"       # idle time before reading the idle RSS
PW_SECONDS="${PW_SECONDS:-5}"           # duration of the create-with-password run
PW_CONNECTIONS="${PW_CONNECTIONS:-4}"   # its connections (each request hashes 19 MiB)
PERF="${PERF:-0}"                       # 1: perf-record the server during the list run
# PERF, KEEP, PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB, CARGO_TARGET_DIR, MRJBOT_BIN: bench/lib.sh
usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

engines=()
while (($#)); do
  case "$1" in
    --engine) [[ $# -ge 2 ]] || usage 2; engines+=(${2//,/ }); shift 2 ;;
    --engine=*) v="${1#*=}"; engines+=(${v//,/ }); shift ;;
    --users) [[ $# -ge 2 ]] || usage 2; USERS="$2"; shift 2 ;;
    --duration) [[ $# -ge 2 ]] || usage 2; DURATION="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
((${#engines[@]})) || read -r -a engines <<<"${ENGINES:-sqlite}"
for e in "${engines[@]}"; do
  [[ "$e" == sqlite || "$e" == postgres ]] || { echo "unknown engine: $e (sqlite or postgres)" >&2; exit 2; }
done
for v in USERS NAMED_USERS DURATION WARMUP THREADS CONNECTIONS START_RUNS IDLE_SECONDS PW_SECONDS PW_CONNECTIONS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
((USERS >= 1 && DURATION >= 1 && START_RUNS >= 1 && THREADS >= 1 && CONNECTIONS >= THREADS)) ||
  { echo "USERS, DURATION, START_RUNS, THREADS must be >= 1 and CONNECTIONS >= THREADS" >&2; exit 2; }

bench_tools "${engines[@]}"
bench_build
bench_workspace
bench_write_helpers

# ------------------------------------------------------------------ helper files (own)
# Helpers of this script only, run in $WORK/helper.py's namespace (see bench/lib.sh).
cat >"$WORK/helper_extra.py" <<'PY'
def check_list(base, token, limit):
    """GET the page the benchmark asks for; print `items total bytes`."""
    st, body = http("GET", f"{base}/api/v1/users?limit={limit}", token=token)
    if st != 200:
        sys.exit(f"GET /api/v1/users: {st} {body[:300]!r}")
    d = json.loads(body)
    print(len(d["items"]), d["total"], len(body))


def total(base, token):
    st, body = http("GET", f"{base}/api/v1/users?limit=1", token=token)
    if st != 200:
        sys.exit(f"GET /api/v1/users: {st} {body[:300]!r}")
    print(json.loads(body)["total"])


def seed_sqlite(path, n, named):
    """Users with a telegram_id (the first `named` also with a username), each holding
    the built-in `user` role, as the API would store them (epoch-ms timestamps)."""
    n, named = int(n), int(named)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    row = db.execute("SELECT id FROM roles WHERE name = 'user'").fetchone()
    if row is None:
        sys.exit("built-in role `user` missing (the server creates it at start)")
    role = row[0]
    now = int(time.time() * 1000)
    langs = ("fa", "en", "ru")
    first = db.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()[0] + 1
    with db:
        db.executemany(
            "INSERT INTO users (id, username, telegram_id, display_name, language, status, failed_logins, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'active', 0, ?, ?)",
            (
                (first + i, f"seed{i:05d}" if i < named else None, 1_000_000_000 + i, f"Seed user {i}",
                 langs[i % 3], now - (n - i) * 1000, now - (n - i) * 1000)
                for i in range(n)
            ),
        )
        db.executemany(
            "INSERT INTO user_roles (user_id, role_id, granted_by, granted_at, expires_at) VALUES (?, ?, NULL, ?, NULL)",
            ((first + i, role, now - (n - i) * 1000) for i in range(n)),
        )
    db.close()


INTEGRITY_SQL = "SELECT COUNT(*), SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id) THEN 1 ELSE 0 END), SUM(CASE WHEN u.telegram_id >= 2000000000000 AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity_type = 'user' AND a.entity_id = u.id AND a.action = 'user.create') THEN 1 ELSE 0 END) FROM users u"


def integrity_sqlite(path):
    """users, users without any role, API-created users without their audit entry."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(*db.execute(INTEGRITY_SQL).fetchone())
PY

cat >"$WORK/create.lua" <<'LUA'
local mode = os.getenv("BENCH_CREATE_MODE") or "telegram"
local base = tonumber(os.getenv("BENCH_TG_BASE") or "2000000000000")
local prefix = os.getenv("BENCH_NAME_PREFIX") or "b"
local threads = {}
tid = 0
created, failed, sample = 0, 0, ""
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  n = n + 1
  local body
  if mode == "password" then
    body = string.format('{"username":"%s%dx%d","password":"bench-pass-123"}', prefix, tid, n)
  else
    body = string.format('{"telegram_id":%.0f,"display_name":"bench %d-%d"}', base + tid * 1e9 + n, tid, n)
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    failed = failed + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 200) end
  end
end

function done(summary, latency, requests)
  local c, f, s = 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
    if s == "" then s = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%.0f duration_us=%.0f created=%.0f failed=%.0f connect_err=%.0f read_err=%.0f write_err=%.0f timeouts=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, c, f, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  if s ~= "" then io.write("SAMPLE " .. string.gsub(s, "\n", " ") .. "\n") end
end
LUA

# ---------------------------------------------------------------------------- nginx
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') serving a 1 KB static file (the machine's ceiling)"
# The create-ceiling: a POST with the same body, answered 201 without any work.
nginx_setup "location = /api/v1/users { return 201 '{\"ok\":true}'; }"
idle_check nginx
starts=()
for i in $(seq "$START_RUNS"); do
  starts+=("$(H starttime "$NG_PORT" /1k.txt "$NG/start.log" "${NGINX_CMD[@]}")")
done
R[nginx.start]="$(H median "${starts[@]}")"
info "start -> first 200: ${starts[*]} ms (median ${R[nginx.start]} ms)"
nginx_start
sleep "$IDLE_SECONDS"
read -r kb nproc_ng < <(H rss-tree "$NG_PID")
R[nginx.rss_idle]="$(mib "$kb")"
info "idle RSS: $(printf '%.1f' "${R[nginx.rss_idle]}") MiB (sum of VmRSS of master + $((nproc_ng - 1)) workers)"
run_wrk nginx-warmup "$NG_PID" "$WORK/get.lua" "$CONNECTIONS" "$WARMUP" "$NG_URL/1k.txt"
run_wrk nginx-list "$NG_PID" "$WORK/get.lua" "$CONNECTIONS" "$DURATION" "$NG_URL/1k.txt"
report nginx-list get
BENCH_CREATE_MODE=telegram BENCH_TG_BASE=9000000000000 \
  run_wrk nginx-create "$NG_PID" "$WORK/create.lua" "$CONNECTIONS" "$DURATION" "$NG_URL/api/v1/users"
report nginx-create create
stop_pid "$NG_PID"

# ---------------------------------------------------------------------------- MRJBot
ADMIN_USER="benchadmin"
ADMIN_PW="bench-Admin-2024x"

bench_engine() {
  local eng="$1" dir="$WORK/$eng" port base token db="" url=""
  mkdir -p "$dir/data"
  local envs=(env -i "PATH=$PATH" "HOME=$HOME")
  if [[ "$eng" == postgres ]]; then
    pg_create_db
    db="$PG_DB"
    url="$PG_URL"
    CUR_PG_DB="$db"
    envs+=("DATABASE_URL=$url")
  fi
  local M=("${envs[@]}" "$MRJBOT_BIN")
  local store=(--data-dir "$dir/data")

  log "MRJBot on $eng: migrate, admin, seed $USERS users"
  (cd "$dir" && "${M[@]}" migrate "${store[@]}") | sed 's/^/   /'
  (cd "$dir" && printf '%s' "$ADMIN_PW" | "${M[@]}" admin create --username "$ADMIN_USER" --password-stdin "${store[@]}") |
    sed 's/^/   /'
  local t0 t1
  t0="$(date +%s.%N)"
  if [[ "$eng" == sqlite ]]; then
    H seed-sqlite "$dir/data/mrjbot.db" "$USERS" "$NAMED_USERS"
  else
    psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null <<SQL
\set n $USERS
\set named $NAMED_USERS
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms \gset
INSERT INTO users (username, telegram_id, display_name, language, status, failed_logins, created_at, updated_at)
SELECT CASE WHEN g <= :named THEN 'seed' || lpad((g - 1)::text, 5, '0') END, 1000000000 + g - 1,
       'Seed user ' || (g - 1), (ARRAY['fa','en','ru'])[1 + (g - 1) % 3], 'active', 0,
       :now_ms - (:n - g + 1) * 1000, :now_ms - (:n - g + 1) * 1000
FROM generate_series(1, :n) AS g;
INSERT INTO user_roles (user_id, role_id, granted_by, granted_at, expires_at)
SELECT u.id, (SELECT id FROM roles WHERE name = 'user'), NULL, u.created_at, NULL
FROM users u WHERE u.telegram_id >= 1000000000;
-- The steady state autovacuum reaches soon after such a load (visibility map, statistics).
VACUUM ANALYZE users;
VACUUM ANALYZE user_roles;
SQL
  fi
  t1="$(date +%s.%N)"
  info "seeded $USERS users (+ role \`user\`, $NAMED_USERS with usernames) in $(calc "$t1 - $t0" | xargs printf '%.1f') s"

  log "MRJBot on $eng: start -> first 200 on /healthz ($START_RUNS starts on the seeded database)"
  idle_check "$eng start"
  local starts=() ms
  for i in $(seq "$START_RUNS"); do
    port="$(H freeport)"
    ms="$(H starttime "$port" /healthz "$dir/start.log" "${M[@]}" serve --listen "127.0.0.1:$port" "${store[@]}")"
    starts+=("$ms")
  done
  R["$eng.start"]="$(H median "${starts[@]}")"
  local own
  own="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/start.log" | grep -o 'startup_ms=[0-9]*' | cut -d= -f2 | tr '\n' ' ' | sed 's/ $//' || true)"
  info "runs: ${starts[*]} ms -> median ${R[$eng.start]} ms (server's own startup_ms log: ${own:-?})"
  ! grep -q 'First start' "$dir/start.log" || info "!! a start created an admin (Argon2id on the start path)"

  log "MRJBot on $eng: idle RSS and load"
  idle_check "$eng load"
  port="$(H freeport)"
  (cd "$dir" && exec "${envs[@]}" MRJBOT_AUTH__LOGIN_PER_MINUTE=100000 MRJBOT_AUTH__LOGIN_BURST=100000 \
    "$MRJBOT_BIN" serve --listen "127.0.0.1:$port" "${store[@]}") >>"$dir/serve.log" 2>&1 &
  local spid=$!
  PIDS+=("$spid")
  base="http://127.0.0.1:$port"
  H wait200 "$port" /readyz 60
  sleep "$IDLE_SECONDS"
  local kb
  read -r kb _ < <(H rss-tree "$spid")
  R["$eng.rss_idle"]="$(mib "$kb")"
  info "idle RSS after ${IDLE_SECONDS} s: $(printf '%.1f' "${R[$eng.rss_idle]}") MiB (VmRSS; threads: $(awk '/^Threads/ {print $2}' "/proc/$spid/status"))"

  token="$(H login "$base" "$ADMIN_USER" "$ADMIN_PW")"
  local items total0 bytes
  read -r items total0 bytes < <(H check-list "$base" "$token" 100)
  info "GET /api/v1/users?limit=100: $items items of total $total0, $bytes bytes"
  ((items == 100 || total0 < 100)) || die "expected 100 items"

  local auth="Authorization: Bearer $token"
  run_wrk "$eng-warmup" "$spid" "$WORK/get.lua" "$CONNECTIONS" "$WARMUP" "$base/api/v1/users?limit=100" -H "$auth"
  run_wrk "$eng-list" "$spid" "$WORK/get.lua" "$CONNECTIONS" "$DURATION" "$base/api/v1/users?limit=100" -H "$auth"
  report "$eng-list" get
  if [[ -s "$WORK/perf-$eng-list.txt" ]]; then
    info "perf (server, list run), top symbols by self time:"
    sed 's/^/      /' "$WORK/perf-$eng-list.txt"
  fi

  local before after
  before="$(H total "$base" "$token")"
  BENCH_CREATE_MODE=telegram BENCH_TG_BASE=2000000000000 \
    run_wrk "$eng-create-warmup" "$spid" "$WORK/create.lua" "$CONNECTIONS" "$WARMUP" "$base/api/v1/users" -H "$auth"
  BENCH_CREATE_MODE=telegram BENCH_TG_BASE=3000000000000 \
    run_wrk "$eng-create" "$spid" "$WORK/create.lua" "$CONNECTIONS" "$DURATION" "$base/api/v1/users" -H "$auth"
  report "$eng-create" create
  BENCH_CREATE_MODE=password BENCH_NAME_PREFIX=pw \
    run_wrk "$eng-create-pw" "$spid" "$WORK/create.lua" "$PW_CONNECTIONS" "$PW_SECONDS" "$base/api/v1/users" -H "$auth" --timeout 30s
  report "$eng-create-pw" create
  after="$(H total "$base" "$token")"
  # wrk stops counting at its deadline; requests in flight then may still be committed.
  local counted=$(($(kv "$WORK/wrk-$eng-create-warmup.txt" created) + ${R[$eng-create.ok]} + ${R[$eng-create-pw.ok]}))
  local slack=$((2 * CONNECTIONS + PW_CONNECTIONS))
  if ((after - before >= counted && after - before <= counted + slack)); then
    info "users in the database: $before -> $after ($counted 201s counted, $((after - before - counted)) more completed as wrk stopped)"
  else
    info "!! users in the database: $before -> $after, but $counted 201s were counted"
    R["$eng-create.err"]=$((${R[$eng-create.err]} + 1))
  fi
  # Every API create is one transaction (user, role, audit entry): nothing half-written.
  local n_users no_role no_audit
  if [[ -n "$CUR_PG_DB" ]]; then
    read -r n_users no_role no_audit < <(psql -qAt -F ' ' "$url" -c "SELECT COUNT(*), SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id) THEN 1 ELSE 0 END), SUM(CASE WHEN u.telegram_id >= 2000000000000 AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity_type = 'user' AND a.entity_id = u.id AND a.action = 'user.create') THEN 1 ELSE 0 END) FROM users u")
  else
    read -r n_users no_role no_audit < <(H integrity-sqlite "$dir/data/mrjbot.db")
  fi
  if ((no_role == 0 && no_audit == 0)); then
    info "integrity: $n_users users, none without a role, every API-created customer audited"
  else
    info "!! integrity: $n_users users, $no_role without any role, $no_audit API-created customers without their audit entry"
    R["$eng-create.err"]=$((${R[$eng-create.err]} + no_role + no_audit))
  fi
  R["$eng.hwm"]="$(awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$spid/status")"
  info "RSS: idle ${R[$eng.rss_idle]%.*} MiB -> after list ${R[$eng-list.rss]} -> after create ${R[$eng-create.rss]} -> after create with password ${R[$eng-create-pw.rss]} MiB (peak VmHWM ${R[$eng.hwm]} MiB)"

  stop_pid "$spid"
  CUR_PG_DB=""
  local problems
  problems="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/serve.log" | grep -E '^[^ ]+ +(ERROR|WARN) ' || true)"
  if [[ -n "$problems" ]]; then
    info "!! server log: $(wc -l <<<"$problems") warnings/errors; first:"
    head -n 3 <<<"$problems" | cut -c1-240 | sed 's/^/      /'
  fi
}

for eng in "${engines[@]}"; do
  bench_engine "$eng"
done

# ---------------------------------------------------------------------------- summary
fmt_ms() { [[ -n "${1:-}" ]] && printf '%.0f ms' "$1" || printf -- '-'; }
fmt_mib() { [[ -n "${1:-}" ]] && printf '%.1f MiB' "$1" || printf -- '-'; }
fmt_rate() { # value errors
  [[ -n "${1:-}" ]] || { printf -- '-'; return; }
  printf '%s/s' "$1"
  [[ "${2:-0}" == 0 ]] || printf ' (%s err)' "$2"
}
fmt_p99() { [[ -n "${1:-}" ]] && printf '%s ms' "$1" || printf -- '-'; }

cols=()
for eng in "${engines[@]}"; do cols+=("MRJBot $eng"); done
row() { # row METRIC VALUES... (one per engine) NGINX TARGET REFERENCE
  local metric="$1"
  shift
  printf '| %-42s' "$metric"
  local i
  for ((i = 0; i < ${#engines[@]}; i++)); do printf ' | %-18s' "$1"; shift; done
  printf ' | %-18s | %-10s | %-32s |\n' "$1" "$2" "$3"
}
sep() {
  printf '|%s' "$(printf -- '-%.0s' $(seq 44))"
  for _ in "${engines[@]}"; do printf '|%s' "$(printf -- '-%.0s' $(seq 20))"; done
  printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 20))" "$(printf -- '-%.0s' $(seq 12))" "$(printf -- '-%.0s' $(seq 34))"
}
vals() { local m="$1" f="$2" k="${3:-}" e; for e in "${engines[@]}"; do "$f" "${R[$e$m]:-}" "${k:+${R[$e$k]:-0}}"; echo; done; }
mapfile_vals() { mapfile -t V < <(vals "$@"); }

log "summary: $USERS users seeded; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on loopback; $NCPU CPUs shared by server and load generator"
echo
row "metric" "${cols[@]}" "nginx (1 KB file)" "target" "Marzban 0.8.4 / PasarGuard 5.2.1"
sep
mapfile_vals .start fmt_ms
row "start -> first 200 (median of $START_RUNS)" "${V[@]}" "$(fmt_ms "${R[nginx.start]}")" "< 300 ms" "2-4 s / 7-9 s"
mapfile_vals .rss_idle fmt_mib
row "idle RSS" "${V[@]}" "$(fmt_mib "${R[nginx.rss_idle]}")" "< 30 MB" "142 MB / 270 MB"
mapfile_vals -create.rss fmt_mib
row "RSS after list + create runs" "${V[@]}" "$(fmt_mib "${R[nginx-create.rss]}")" "" ""
mapfile_vals -create-pw.rss fmt_mib
row "RSS after create with password" "${V[@]}" "-" "" ""
mapfile_vals -list.rps fmt_rate -list.err
row "GET /users?limit=100 (nginx: 1 KB file)" "${V[@]}" "$(fmt_rate "${R[nginx-list.rps]}" "${R[nginx-list.err]}")" ">= 3,000/s" "2.5/s / 42/s (of 10k users)"
mapfile_vals -list.p99 fmt_p99
row "  p99 latency" "${V[@]}" "$(fmt_p99 "${R[nginx-list.p99]}")" "" ""
mapfile_vals -create.rps fmt_rate -create.err
row "users created/s (Telegram, no password)" "${V[@]}" "$(fmt_rate "${R[nginx-create.rps]}" "${R[nginx-create.err]}")" ">= 1,000/s" "31-50/s / 46-48/s"
mapfile_vals -create.p99 fmt_p99
row "  p99 latency" "${V[@]}" "$(fmt_p99 "${R[nginx-create.p99]}")" "" ""
mapfile_vals -create-pw.rps fmt_rate -create-pw.err
row "users created/s with password (Argon2id)" "${V[@]}" "-" "" ""
mapfile_vals -create-pw.p99 fmt_p99
row "  p99 latency (-c$PW_CONNECTIONS)" "${V[@]}" "-" "" ""
echo
echo "nginx column: the same wrk runs against nginx; for creation a POST answered 201 by nginx's 'return' (no work)."
[[ -z "${R[disturbed]:-}" ]] ||
  echo "!! other processes competed for the CPUs during: ${R[disturbed]}(their figures are low; rerun on a quiet machine, e.g. WAIT_IDLE=300)"
echo
verdict() { # name value op target unit
  local ok
  ok="$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN { print (op == "<" ? v < t : v >= t) ? "met" : "MISSED" }')"
  if [[ "$ok" == met ]]; then
    printf '   %-8s %-34s %s %s (target %s %s)\n' "$eng" "$1" "$2" "$5" "$3" "$4"
  else
    printf '   %-8s %-34s %s %s (target %s %s) MISSED by %s%%\n' "$eng" "$1" "$2" "$5" "$3" "$4" \
      "$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN { printf "%.0f", (op == "<" ? (v - t) / t : (t - v) / t) * 100 }')"
  fi
}
for eng in "${engines[@]}"; do
  verdict "start -> first 200" "${R[$eng.start]}" "<" 300 ms
  verdict "idle RSS" "$(printf '%.1f' "${R[$eng.rss_idle]}")" "<" 30 MiB
  verdict "list req/s" "${R[$eng-list.rps]}" ">=" 3000 "/s"
  verdict "create users/s" "${R[$eng-create.rps]}" ">=" 1000 "/s"
  printf '   %-8s %-34s %s%% of nginx (%s vs %s req/s)\n' "$eng" "list vs nginx 1 KB file" \
    "$(calc "${R[$eng-list.rps]} / ${R[nginx-list.rps]} * 100" | xargs printf '%.1f')" "${R[$eng-list.rps]}" "${R[nginx-list.rps]}"
  errs=$((${R[$eng-list.err]} + ${R[$eng-create.err]} + ${R[$eng-create-pw.err]}))
  ((errs == 0)) || printf '   %-8s !! %d failed requests in the load runs (see above)\n' "$eng" "$errs"
done
