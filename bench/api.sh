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
KEEP="${KEEP:-0}"                       # 1: keep the temporary directory and database
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-postgres}"
PG_ADMIN_DB="${PG_ADMIN_DB:-test}"      # database to connect to for CREATE/DROP DATABASE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mrjbot-target}"
MRJBOT_BIN="${MRJBOT_BIN:-}"            # prebuilt binary: skips the cargo build

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

log() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------- tools
SUDO=""
[[ $EUID -eq 0 ]] || SUDO="sudo"
APT_UPDATED=0
apt_install() { # apt_install PKG...: install, running `apt-get update` only if needed
  command -v apt-get >/dev/null || return 1
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
    ((APT_UPDATED)) && return 1
    $SUDO apt-get update -q >/dev/null || return 1
    APT_UPDATED=1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null
  fi
}
find_nginx() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }

log "tools"
command -v python3 >/dev/null || apt_install python3 || die "python3 is required"
command -v wrk >/dev/null || { info "installing wrk"; apt_install wrk || die "cannot install wrk"; }
NGINX="$(find_nginx)"
if [[ -z "$NGINX" ]]; then
  info "installing nginx-light (its service is not started or configured by this script)"
  apt_install nginx-light || apt_install nginx || die "cannot install nginx"
  NGINX="$(find_nginx)"
  [[ -n "$NGINX" ]] || die "nginx installed but not found"
fi
if [[ " ${engines[*]} " == *" postgres "* ]] && ! command -v psql >/dev/null; then
  info "installing postgresql-client"
  apt_install postgresql-client || die "cannot install psql"
fi
info "wrk: $(wrk -v 2>&1 | head -n1 | cut -c1-60)"
info "nginx: $("$NGINX" -v 2>&1 | head -n1)"
info "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"

# ------------------------------------------------------------------------------- build
log "build"
if [[ -z "$MRJBOT_BIN" ]]; then
  if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then PATH="$HOME/.cargo/bin:$PATH"; fi
  command -v cargo >/dev/null || die "cargo not found (or set MRJBOT_BIN to a built binary)"
  info "cargo build --release -p mrjbot --locked (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  t0=$(date +%s)
  (cd "$ROOT" && cargo build --release -p mrjbot --locked --quiet)
  info "built in $(($(date +%s) - t0)) s"
  MRJBOT_BIN="$CARGO_TARGET_DIR/release/mrjbot"
fi
[[ -x "$MRJBOT_BIN" ]] || die "no binary at $MRJBOT_BIN"
info "binary: $MRJBOT_BIN ($(du -h "$MRJBOT_BIN" | cut -f1), $("$MRJBOT_BIN" version))"

# ----------------------------------------------------------------- workspace & cleanup
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mrjbot-bench.XXXXXX")"
chmod 711 "$WORK" # nginx workers (nobody) must reach $WORK/www
PIDS=()
PG_DBS=()
CUR_PG_DB="" # the PostgreSQL database being measured, if any
cleanup() {
  local rc=$? pid db
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  for db in "${PG_DBS[@]}"; do
    [[ "$KEEP" != 1 ]] || { echo "bench: kept database $db" >&2; continue; }
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -qAtc \
      "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || echo "bench: could not drop database $db" >&2
  done
  if [[ "$KEEP" == 1 ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
forget_pid() { # drop a finished process from the cleanup list
  local p keep=()
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() { # SIGTERM a process this script started and wait for it
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}

# ------------------------------------------------------------------------ helper files
cat >"$WORK/helper.py" <<'PY'
"""Small helpers for bench/api.sh (standard library only)."""
import json, os, signal, socket, sqlite3, statistics, subprocess, sys, time, urllib.request, urllib.error


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def probe(port, path):
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(req)
            return s.recv(32).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def starttime(port, path, logfile, *cmd):
    """Exec cmd, poll path every ~1 ms, print ms from exec to the first 200, stop it."""
    port = int(port)
    with open(logfile, "ab") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=os.path.dirname(logfile))
        try:
            while not probe(port, path):
                if p.poll() is not None:
                    sys.exit(f"{cmd[0]} exited with {p.returncode} before answering; see {logfile}")
                if time.perf_counter() - t0 > 60:
                    sys.exit(f"no 200 from {path} within 60 s; see {logfile}")
                time.sleep(0.001)
            ms = (time.perf_counter() - t0) * 1000
            time.sleep(0.3)  # let it log its start line before it is stopped
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    print(f"{ms:.1f}")


def wait200(port, path, timeout):
    t0 = time.time()
    while not probe(int(port), path):
        if time.time() - t0 > float(timeout):
            sys.exit(f"no 200 from 127.0.0.1:{port}{path} within {timeout} s")
        time.sleep(0.005)


def login(base, user, pw):
    st, body = http("POST", base + "/api/v1/auth/login", {"username": user, "password": pw})
    if st != 200:
        sys.exit(f"login failed: {st} {body[:300]!r}")
    print(json.loads(body)["access_token"])


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


def rss_tree(pid):
    """VmRSS (KiB) of pid plus all its descendants, and the process count."""
    pid = int(pid)
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    todo, total_kb, count = [pid], 0, 0
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
            count += 1
        except OSError:
            pass
        todo.extend(children.get(p, []))
    print(total_kb, count)


def cpu_ticks(*pids):
    """utime+stime (clock ticks) of the pids and their descendants (threads included)."""
    children = {}
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                stats[int(d)] = int(rest[11]) + int(rest[12])
                children.setdefault(int(rest[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    todo, t = [int(p) for p in pids], 0
    while todo:
        p = todo.pop()
        t += stats.get(p, 0)
        todo.extend(children.get(p, []))
    print(t)


def busiest(secs):
    """The 3 processes that used the most CPU over the next `secs` seconds."""
    def snap():
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        raw = f.read()
                    rest = raw.rsplit(")", 1)[1].split()
                    out[int(d)] = (raw[raw.index("(") + 1:raw.rindex(")")], int(rest[11]) + int(rest[12]))
                except (OSError, ValueError, IndexError):
                    pass
        return out
    a = snap()
    time.sleep(float(secs))
    b = snap()
    tck = os.sysconf("SC_CLK_TCK")
    used = sorted(((t - a[p][1], name, p) for p, (name, t) in b.items() if p in a), reverse=True)[:3]
    for ticks, name, pid in used:
        if ticks > 0:
            print(f"{ticks / tck / float(secs) * 100:5.0f}% {name} (pid {pid})")


INTEGRITY_SQL = "SELECT COUNT(*), SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id) THEN 1 ELSE 0 END), SUM(CASE WHEN u.telegram_id >= 2000000000000 AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity_type = 'user' AND a.entity_id = u.id AND a.action = 'user.create') THEN 1 ELSE 0 END) FROM users u"


def integrity_sqlite(path):
    """users, users without any role, API-created users without their audit entry."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(*db.execute(INTEGRITY_SQL).fetchone())


def _procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    raw = f.read()
                rest = raw.rsplit(")", 1)[1].split()
                out[d] = [raw[raw.index("(") + 1:raw.rindex(")")], int(rest[1]), int(rest[11]) + int(rest[12])]
            except (OSError, ValueError, IndexError):
                pass
    return out


def procsnap(path):
    with open(path, "w") as f:
        json.dump(_procs(), f)


def procdiff(path0, path1, wall, pg, *exclude):
    """CPU (cores) of foreign user-space processes between two snapshots, then the top 3:
    leaves out the exclude pids and their children, kernel threads (the kernel working
    for the benchmark, e.g. ext4/block I/O), and with pg=1 any `postgres` process."""
    with open(path0) as f:
        a = json.load(f)
    with open(path1) as f:
        b = json.load(f)
    skip = {str(p) for p in exclude} | {"2"}
    changed = True
    while changed:
        changed = False
        for pid, (_, ppid, _) in b.items():
            if pid not in skip and str(ppid) in skip:
                skip.add(pid)
                changed = True
    by_name = {}
    for pid, (name, _, t) in b.items():
        if pid in skip or (pg == "1" and name == "postgres"):
            continue
        d = t - (a[pid][2] if pid in a and a[pid][0] == name else 0)
        if d > 0:
            by_name[name] = by_name.get(name, 0) + d
    tck = os.sysconf("SC_CLK_TCK")
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
    total = sum(by_name.values()) / tck / float(wall)
    print(f"{total:.2f}", ", ".join(f"{n} {t / tck / float(wall):.2f}" for n, t in top))


def median(*xs):
    print(f"{statistics.median(float(x) for x in xs):.1f}")


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
H() { python3 "$WORK/helper.py" "$@"; }

# GET runs: no per-request Lua (keeps wrk cheap); only a machine-readable summary.
cat >"$WORK/get.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%.0f duration_us=%.0f bad_status=%.0f connect_err=%.0f read_err=%.0f write_err=%.0f timeouts=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
LUA

# POST /api/v1/users with a unique telegram_id (or username) per request: a per-thread
# counter plus a thread-specific offset. Counts 201s; anything else is an error.
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

# ------------------------------------------------------------------------- measuring
declare -A R # results: R[<column>.<metric>]
CLK_TCK="$(getconf CLK_TCK)"
NCPU="$(nproc)"

kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1" | tail -n1; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
machine_busy() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }
children_cpu() { # CPU seconds of this shell's finished children (bash `times`, 2nd line)
  times >"$WORK/times" # in this shell: `times` in a $(subshell) would see only its own
  tail -n1 "$WORK/times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.3f", t }'
}
rss_mib() { H rss-tree "$1" | awk '{ printf "%.1f", $1 / 1024 }'; } # process + children

# idle_check WHAT: samples the machine for 1 s; other processes eating CPU skew every
# figure, so say so (and with WAIT_IDLE=SECONDS, wait up to that long for quiet).
idle_check() {
  local waited=0 b0 t0 b1 t1 busy
  while :; do
    read -r b0 t0 < <(machine_busy)
    sleep 1
    read -r b1 t1 < <(machine_busy)
    busy="$(calc "($b1 - $b0) / ($t1 - $t0) * $NCPU")"
    awk -v b="$busy" 'BEGIN { exit !(b > 0.25) }' || return 0
    if ((waited >= ${WAIT_IDLE:-0})); then
      info "!! the machine is not idle before '$1': $(printf '%.2f' "$busy") of $NCPU cores busy (other processes); figures will be lower"
      H busiest 1 | sed 's/^/      /'
      return 0
    fi
    waited=$((waited + 5))
    sleep 4
  done
}

# run_wrk NAME SERVER_PID SCRIPT CONNS SECONDS URL [wrk args...]: runs wrk, records the
# CPU used meanwhile by the server, by wrk and by the rest of the machine, and the
# server's RSS after; leaves everything in $WORK/wrk-NAME.txt.
run_wrk() {
  local name="$1" spid="$2" script="$3" conns="$4" secs="$5" url="$6" out="$WORK/wrk-$1.txt"
  shift 6
  local c0 c1 w0 w1 d0=0 d1=0 t0 t1 busy0 tot0 busy1 tot1 perf_pid="" wall dbpids=()
  [[ "$name" == *warmup ]] || idle_check "$name"
  if [[ -n "$CUR_PG_DB" ]]; then # PostgreSQL: backends of our database + WAL writer, checkpointer...
    mapfile -t dbpids < <(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -qAtc \
      "SELECT pid FROM pg_stat_activity WHERE datname = '$CUR_PG_DB' OR backend_type NOT IN ('client backend', 'autovacuum worker')" \
      2>/dev/null || true)
    ((${#dbpids[@]} == 0)) || d0="$(H cpu-ticks "${dbpids[@]}")"
  fi
  c0="$(H cpu-ticks "$spid")"
  H procsnap "$WORK/procs0.json"
  children_cpu >"$WORK/w0"
  read -r busy0 tot0 < <(machine_busy)
  t0="$(date +%s.%N)"
  if [[ "$PERF" == 1 && "$name" == *-list && "$name" != nginx* ]] && command -v perf >/dev/null; then
    perf record -q -F 499 -g -p "$spid" -o "$WORK/perf-$name.data" -- sleep "$secs" >/dev/null 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
  fi
  wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency -s "$script" "$@" "$url" >"$out" 2>&1 ||
    { cat "$out"; die "wrk failed ($name)"; }
  t1="$(date +%s.%N)"
  read -r busy1 tot1 < <(machine_busy)
  children_cpu >"$WORK/w1"
  H procsnap "$WORK/procs1.json"
  w0="$(<"$WORK/w0")"
  w1="$(<"$WORK/w1")"
  c1="$(H cpu-ticks "$spid")"
  ((${#dbpids[@]} == 0)) || d1="$(H cpu-ticks "${dbpids[@]}")"
  if [[ -n "$perf_pid" ]]; then
    wait "$perf_pid" 2>/dev/null || true
    forget_pid "$perf_pid"
    perf report -i "$WORK/perf-$name.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | sed -E 's/ {2,}/  /g; s/( +-)+ *$//' | head -n 25 >"$WORK/perf-$name.txt" || true
  fi
  grep -q '^RESULT' "$out" || { cat "$out"; die "wrk printed no result ($name)"; }
  wall="$(calc "$t1 - $t0")"
  local server wrkc machine dbc
  server="$(calc "($c1 - $c0) / $CLK_TCK / $wall")"
  dbc="$(calc "($d1 - $d0) / $CLK_TCK / $wall")"
  wrkc="$(calc "($w1 - $w0) / $wall")"
  machine="$(calc "($busy1 - $busy0) / ($tot1 - $tot0) * $NCPU")"
  local others
  others="$(H procdiff "$WORK/procs0.json" "$WORK/procs1.json" "$wall" "$([[ -n "$CUR_PG_DB" ]] && echo 1 || echo 0)" "$spid" $$)"
  echo "CPU server_cores=$server db_cores=$dbc wrk_cores=$wrkc kernel_etc_cores=$(calc "$machine - $server - $dbc - $wrkc - ${others%% *}") other_cores=${others%% *} rss_mib=$(rss_mib "$spid")" >>"$out"
  echo "OTHERS ${others#* }" >>"$out"
}

# report NAME KIND: prints one line of a wrk run and stores rps/p99/errors/rss in R.
report() {
  local name="$1" kind="$2" out="$WORK/wrk-$1.txt" req dur ok bad rps p99 p50
  req="$(kv "$out" requests)"
  dur="$(kv "$out" duration_us)"
  if [[ "$kind" == create ]]; then
    ok="$(kv "$out" created)"
    bad="$(kv "$out" failed)"
  else
    bad="$(kv "$out" bad_status)"
    ok=$((req - bad))
  fi
  bad=$((bad + $(kv "$out" connect_err) + $(kv "$out" read_err) + $(kv "$out" write_err) + $(kv "$out" timeouts)))
  rps="$(calc "$ok / ($dur / 1000000)")"
  p50="$(calc "$(kv "$out" p50_us) / 1000")"
  p99="$(calc "$(kv "$out" p99_us) / 1000")"
  R["$name.rps"]="$(printf '%.0f' "$rps")"
  R["$name.p99"]="$(printf '%.2f' "$p99")"
  R["$name.err"]="$bad"
  R["$name.ok"]="$ok"
  R["$name.rss"]="$(kv "$out" rss_mib)"
  local dbc other
  dbc="$(kv "$out" db_cores)"
  other="$(kv "$out" other_cores)"
  printf '   %-18s %7.0f/s  p50 %7.2f ms  p99 %7.2f ms  ok %6d  err %d | CPU cores: server %.2f%s, wrk %.2f, kernel/etc %.2f, other %.2f | RSS %s MiB\n' \
    "$name" "$rps" "$p50" "$p99" "$ok" "$bad" "$(kv "$out" server_cores)" \
    "$([[ -z "$CUR_PG_DB" ]] || printf ', postgres %.2f' "$dbc")" "$(kv "$out" wrk_cores)" \
    "$(kv "$out" kernel_etc_cores)" "$other" "${R[$name.rss]}"
  if awk -v o="$other" 'BEGIN { exit !(o > 0.3) }'; then
    info "!! other processes used $(printf '%.2f' "$other") cores during this run ($(sed -n 's/^OTHERS //p' "$out")): the figure is depressed"
    R[disturbed]="${R[disturbed]:-}$name "
  fi
  if ((bad > 0)); then
    info "!! $bad requests failed; first: $(sed -n 's/^SAMPLE //p' "$out" | head -n1 | cut -c1-200)"
    grep -E 'Non-2xx|Socket errors' "$out" | sed 's/^/      /' || true
  fi
}

mib() { calc "$1 / 1024"; }

# ---------------------------------------------------------------------------- nginx
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') serving a 1 KB static file (the machine's ceiling)"
NG="$WORK/nginx"
mkdir -p "$NG/www" "$NG/tmp"
chmod 755 "$NG" "$NG/www"
python3 -c 'import sys; sys.stdout.write(("x" * 63 + "\n") * 16)' >"$NG/www/1k.txt" # 1024 bytes
chmod 644 "$NG/www/1k.txt"
NG_PORT="$(H freeport)"
cat >"$NG/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $NG/www;
        # The create-ceiling: a POST with the same body, answered 201 without any work.
        location = /api/v1/users { return 201 '{"ok":true}'; }
    }
}
EOF
NGINX_CMD=("$NGINX" -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf")
"${NGINX_CMD[@]}" -t -q || die "nginx rejected the private config"
idle_check nginx
starts=()
for i in $(seq "$START_RUNS"); do
  starts+=("$(H starttime "$NG_PORT" /1k.txt "$NG/start.log" "${NGINX_CMD[@]}")")
done
R[nginx.start]="$(H median "${starts[@]}")"
info "start -> first 200: ${starts[*]} ms (median ${R[nginx.start]} ms)"
"${NGINX_CMD[@]}" >>"$NG/start.log" 2>&1 &
NG_PID=$!
PIDS+=("$NG_PID")
H wait200 "$NG_PORT" /1k.txt 10
sleep "$IDLE_SECONDS"
read -r kb nproc_ng < <(H rss-tree "$NG_PID")
R[nginx.rss_idle]="$(mib "$kb")"
info "idle RSS: $(printf '%.1f' "${R[nginx.rss_idle]}") MiB (sum of VmRSS of master + $((nproc_ng - 1)) workers)"
NG_URL="http://127.0.0.1:$NG_PORT"
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
    db="mrjbot_bench_$$_$RANDOM"
    PG_DBS+=("$db")
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -qAtc "CREATE DATABASE $db" >/dev/null ||
      die "cannot create database $db on $PG_HOST:$PG_PORT"
    url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$db"
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
