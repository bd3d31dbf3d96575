# shellcheck shell=bash
# Shared parts of the benchmarks in bench/ (api.sh, sub.sh): sourced, never run.
#
# Provides: log/info/die; tool installation (wrk, nginx, psql) via apt; the release build;
# a temporary workspace with a cleanup trap that stops only the processes the script
# started and drops the PostgreSQL databases it created; a Python helper ($WORK/helper.py,
# called as `H name args...`) plus $WORK/get.lua; wrk runs with a CPU breakdown
# (run_wrk / report); a private nginx on a free loopback port (nginx_setup / nginx_start);
# a fresh PostgreSQL database (pg_create_db).
#
# The sourcing script sets, before calling these: THREADS (wrk -t); optionally PERF,
# PERF_MATCH (glob of run names perf-recorded, default `*-list`), KEEP, WAIT_IDLE, PG_*,
# MRJBOT_BIN, CARGO_TARGET_DIR. A script adds its own helper functions by writing Python
# to $WORK/helper_extra.py (run in helper.py's namespace) and its own Lua files.

BENCH_LIB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PERF="${PERF:-0}"                       # 1: perf-record the server during the runs named by PERF_MATCH
PERF_MATCH="${PERF_MATCH:-*-list}"
KEEP="${KEEP:-0}"                       # 1: keep the temporary directory and database
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-postgres}"
PG_ADMIN_DB="${PG_ADMIN_DB:-test}"      # database to connect to for CREATE/DROP DATABASE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mrjbot-target}"
MRJBOT_BIN="${MRJBOT_BIN:-}"            # prebuilt binary: skips the cargo build

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

bench_tools() { # bench_tools ENGINE...: wrk, nginx (sets NGINX), psql for postgres
  local engines=("$@")
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
}

# ------------------------------------------------------------------------------- build
bench_build() { # sets MRJBOT_BIN (builds unless it is set)
  log "build"
  if [[ -z "$MRJBOT_BIN" ]]; then
    if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then PATH="$HOME/.cargo/bin:$PATH"; fi
    command -v cargo >/dev/null || die "cargo not found (or set MRJBOT_BIN to a built binary)"
    info "cargo build --release -p mrjbot --locked (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    local t0
    t0=$(date +%s)
    (cd "$BENCH_LIB_ROOT" && cargo build --release -p mrjbot --locked --quiet)
    info "built in $(($(date +%s) - t0)) s"
    MRJBOT_BIN="$CARGO_TARGET_DIR/release/mrjbot"
  fi
  [[ -x "$MRJBOT_BIN" ]] || die "no binary at $MRJBOT_BIN"
  info "binary: $MRJBOT_BIN ($(du -h "$MRJBOT_BIN" | cut -f1), $("$MRJBOT_BIN" version))"
}

# ----------------------------------------------------------------- workspace & cleanup
bench_workspace() { # WORK, PIDS, PG_DBS, CUR_PG_DB and the cleanup trap
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/mrjbot-bench.XXXXXX")"
  chmod 711 "$WORK" # nginx workers (nobody) must reach $WORK/nginx/www
  PIDS=()
  PG_DBS=()
  CUR_PG_DB="" # the PostgreSQL database being measured, if any
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
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
forget_pid() { # drop a finished process from the cleanup list
  local p keep=()
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() { # SIGTERM a process this script started; wait for it (SIGKILL after 20 s)
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget_pid "$1"
}

# ------------------------------------------------------------------------ helper files
bench_write_helpers() { # $WORK/helper.py and $WORK/get.lua
cat >"$WORK/helper.py" <<'PY'
"""Small helpers for the scripts in bench/ (standard library only)."""
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
    a = _procs()
    time.sleep(float(secs))
    b = _procs()
    tck = os.sysconf("SC_CLK_TCK")
    used = sorted(((t - a[p][2], name, p) for p, (name, _, t) in b.items() if p in a), reverse=True)[:3]
    for ticks, name, pid in used:
        if ticks > 0:
            print(f"{ticks / tck / float(secs) * 100:5.0f}% {name} (pid {pid})")


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
    extra = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper_extra.py")
    if os.path.exists(extra):  # the sourcing script's own helpers
        with open(extra) as f:
            exec(compile(f.read(), extra, "exec"), globals())
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY

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
}
H() { python3 "$WORK/helper.py" "$@"; }

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
  if [[ "$PERF" == 1 && "$name" == $PERF_MATCH && "$name" != nginx* ]] && command -v perf >/dev/null; then
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
  R["$name.p50"]="$(printf '%.2f' "$p50")"
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
# nginx_setup [LINE...]: a private nginx config serving $NG/www/1k.txt (1024 bytes) on a
# free loopback port; each LINE is added to its server block. Sets NG, NG_PORT, NG_URL
# and NGINX_CMD (run in the foreground: daemon off). The system nginx is not touched.
nginx_setup() {
  NG="$WORK/nginx"
  mkdir -p "$NG/www" "$NG/tmp"
  chmod 755 "$NG" "$NG/www"
  python3 -c 'import sys; sys.stdout.write(("x" * 63 + "\n") * 16)' >"$NG/www/1k.txt" # 1024 bytes
  chmod 644 "$NG/www/1k.txt"
  NG_PORT="$(H freeport)"
  NG_URL="http://127.0.0.1:$NG_PORT"
  local extra="" line
  for line in "$@"; do extra+="        $line"$'\n'; done
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
${extra}    }
}
EOF
  NGINX_CMD=("$NGINX" -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf")
  "${NGINX_CMD[@]}" -t -q || die "nginx rejected the private config"
}

# nginx_start: runs the private nginx in the background until the 1 KB file answers 200.
# Sets NG_PID (stopped by the cleanup trap, or earlier with stop_pid).
nginx_start() {
  "${NGINX_CMD[@]}" >>"$NG/start.log" 2>&1 &
  NG_PID=$!
  PIDS+=("$NG_PID")
  H wait200 "$NG_PORT" /1k.txt 10
}

# ---------------------------------------------------------------------- PostgreSQL
# pg_create_db: a fresh database mrjbot_bench_<pid>_<n> on PG_HOST:PG_PORT, dropped by the
# cleanup trap (unless KEEP=1). Sets PG_DB and PG_URL.
pg_create_db() {
  PG_DB="mrjbot_bench_$$_$RANDOM"
  PG_DBS+=("$PG_DB")
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -qAtc "CREATE DATABASE $PG_DB" >/dev/null ||
    die "cannot create database $PG_DB on $PG_HOST:$PG_PORT"
  PG_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
}
