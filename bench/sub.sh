#!/usr/bin/env bash
# Benchmark of the subscription endpoint `GET /sub/{token}` with 100,000 subscriptions,
# next to nginx serving a 1 KB static file on the same machine in the same run.
#
# Per engine: requests/s, p50/p99 (base64 list, 1,000 tokens rotating), errors at 256
# connections, the heavier sing-box and clash-meta documents, unknown-token timing
# (random vs near-miss tokens), RSS right after start and at peak, a run over every
# token (the render path), then a summary table against the targets and the figures of
# Marzban / PasarGuard.
#
# Usage: bench/sub.sh [--engine sqlite|postgres]... [--subs N] [--duration SECONDS]
#        ENGINES="sqlite postgres" bench/sub.sh
# See bench/README.md for every knob. Talks to loopback only; every load run is bounded
# in time; every process and temporary directory it starts is removed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh" # log/info/die, tools, build, workspace, wrk runs, nginx, PostgreSQL

# ---------------------------------------------------------------------------- settings
SUBS="${SUBS:-100000}"                  # customers seeded, one subscription each
TOKENS="${TOKENS:-1000}"                # distinct tokens the load rotates over
DURATION="${DURATION:-10}"              # seconds of each measured wrk run
WARMUP="${WARMUP:-2}"                   # seconds of unreported warm-up before the main runs
THREADS="${THREADS:-2}"                 # wrk threads
CONNECTIONS="${CONNECTIONS:-64}"        # wrk connections
HIGH_CONNECTIONS="${HIGH_CONNECTIONS:-256}" # the error check
TIMING_SECONDS="${TIMING_SECONDS:-4}"   # each of the 4 unknown-token runs
TIMING_CONNECTIONS="${TIMING_CONNECTIONS:-1}" # their connections (1: no queueing in the latency)
COLD="${COLD:-1}"                       # 1: also a run rotating over every token
SETTLE_SECONDS="${SETTLE_SECONDS:-0}"   # then wait this long idle and read RSS again
IDLE_SECONDS="${IDLE_SECONDS:-3}"       # idle time after start before the start RSS is read
PERF_TOP="${PERF_TOP:-15}"              # symbols printed with PERF=1
PERF_MATCH='*-base64'                   # PERF=1 records the server during the main run
# PERF, KEEP, PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB, CARGO_TARGET_DIR, MRJBOT_BIN: bench/lib.sh

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

engines=()
while (($#)); do
  case "$1" in
    --engine) [[ $# -ge 2 ]] || usage 2; engines+=(${2//,/ }); shift 2 ;;
    --engine=*) v="${1#*=}"; engines+=(${v//,/ }); shift ;;
    --subs) [[ $# -ge 2 ]] || usage 2; SUBS="$2"; shift 2 ;;
    --duration) [[ $# -ge 2 ]] || usage 2; DURATION="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
((${#engines[@]})) || read -r -a engines <<<"${ENGINES:-sqlite postgres}"
for e in "${engines[@]}"; do
  [[ "$e" == sqlite || "$e" == postgres ]] || { echo "unknown engine: $e (sqlite or postgres)" >&2; exit 2; }
done
for v in SUBS TOKENS DURATION WARMUP THREADS CONNECTIONS HIGH_CONNECTIONS TIMING_SECONDS TIMING_CONNECTIONS IDLE_SECONDS PERF_TOP SETTLE_SECONDS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "$v must be a whole number" >&2; exit 2; }
done
((SUBS >= 1 && TOKENS >= 1 && DURATION >= 1 && TIMING_SECONDS >= 1 && THREADS >= 1 && TIMING_CONNECTIONS >= 1 &&
  CONNECTIONS >= THREADS && HIGH_CONNECTIONS >= THREADS)) ||
  { echo "SUBS, TOKENS, DURATION, TIMING_SECONDS, THREADS, TIMING_CONNECTIONS must be >= 1 and CONNECTIONS, HIGH_CONNECTIONS >= THREADS" >&2; exit 2; }
((TOKENS <= SUBS)) || TOKENS="$SUBS"
TIMING_THREADS=$((THREADS < TIMING_CONNECTIONS ? THREADS : TIMING_CONNECTIONS))
T_START=$(date +%s)

bench_tools "${engines[@]}"
bench_build
bench_workspace
bench_write_helpers
LUA_SUB="$ROOT/bench/sub.lua"
[[ -r "$LUA_SUB" ]] || die "missing $LUA_SUB"

# ------------------------------------------------------------------ helper files (own)
# Helpers of this script only, run in $WORK/helper.py's namespace (see bench/lib.sh).
cat >"$WORK/helper_extra.py" <<'PY'
import base64, csv, random, secrets, uuid


def _api(base, token, method, path, body=None):
    st, out = http(method, base + path, body, token=token)
    if st not in (200, 201):
        sys.exit(f"{method} {path}: {st} {out[:400]!r}")
    return json.loads(out) if out else {}


def topology(base, token):
    """Through the API, so every inbound setting is validated: one plan (30 days, 50 GiB,
    no region) and 3 agent nodes with 12 inbounds, giving 12 links per subscription
    (the CDN-fronted ws inbound has 2 host overrides, so 2 links). Prints the plan id."""
    plan = _api(base, token, "POST", "/api/v1/plans",
                {"name": "Bench 30 days", "duration_days": 30, "data_limit_bytes": 50 * 2**30})
    ss_key = base64.b64encode(secrets.token_bytes(16)).decode()

    def reality(host):
        return {"tag": "vless-reality", "protocol": "vless", "port": 443, "network": "tcp", "security": "reality",
                "settings": {"sni": "www.microsoft.com", "fp": "chrome",
                             "public_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="),
                             "short_id": secrets.token_hex(8), "flow": "xtls-rprx-vision"}}

    def trojan(host):
        return {"tag": "trojan-tls", "protocol": "trojan", "port": 2083, "network": "tcp", "security": "tls",
                "settings": {"sni": host, "fp": "chrome", "alpn": ["h2", "http/1.1"]}}

    def ss(host):
        return {"tag": "ss-2022", "protocol": "shadowsocks", "port": 8388, "network": "tcp", "security": "none",
                "settings": {"method": "2022-blake3-aes-128-gcm", "server_key": ss_key}}

    def hy2(host):
        return {"tag": "hysteria2", "protocol": "hysteria2", "port": 8443, "network": "udp", "security": "tls",
                "settings": {"sni": host, "alpn": ["h3"], "obfs_password": secrets.token_urlsafe(12),
                             "hop_ports": "20000-30000"}}

    def ws(host, cdn):
        s = {"sni": host, "host": host, "path": "/vless-ws", "fp": "chrome", "alpn": ["http/1.1"]}
        if cdn:  # the same inbound behind a CDN: one link per front address
            front = {"port": 443, "sni": "cdn.bench.example", "host": "cdn.bench.example"}
            s["hosts"] = [dict(front, address="cdn.bench.example"), dict(front, address="104.16.0.1")]
        return {"tag": "vless-ws-cdn" if cdn else "vless-ws", "protocol": "vless", "port": 2053, "network": "ws",
                "security": "tls", "settings": s}

    layout = [
        ("de-1", "DE", lambda h: [reality(h), ws(h, True), trojan(h), ss(h)]),  # 5 links
        ("nl-1", "NL", lambda h: [reality(h), trojan(h), hy2(h)]),             # 3 links
        ("fi-1", "FI", lambda h: [reality(h), ws(h, False), ss(h), hy2(h)]),   # 4 links
    ]
    for name, region, inbounds in layout:
        host = f"{name}.bench.example"
        node = _api(base, token, "POST", "/api/v1/nodes",
                    {"name": name, "kind": "agent", "address": host, "region": region})
        for ib in inbounds(host):
            _api(base, token, "POST", f"/api/v1/nodes/{node['id']}/inbounds", ib)
    print(plan["id"])


def _near(tok):
    """The same token with its last character changed (still 43 base64url characters)."""
    return tok[:-1] + ("Q" if tok[-1] != "Q" else "A")


def gen_seed(outdir, n, first_user, role, plan, sample):
    """CSV files of n customers (username, telegram_id, the `user` role) with one active
    subscription each, as the service stores them (43-character base64url token, UUIDv4,
    24-character secret, version 1, ip_type dynamic, node_id NULL so every dynamic node
    serves it, expiry in 1-60 days, 50 GiB cap, epoch-ms timestamps); and the token lists
    tokens.txt (`sample` real tokens spread over the set), near.txt (those with the last
    character changed), unknown.txt (random tokens) and all.txt (every token, shuffled)."""
    n, first_user, sample = int(n), int(first_user), int(sample)
    now = int(time.time() * 1000)
    day = 86_400_000
    limit = 50 * 2**30
    rnd = random.Random(1)
    tokens = []
    with open(f"{outdir}/users.csv", "w", newline="") as fu, \
            open(f"{outdir}/user_roles.csv", "w", newline="") as fr, \
            open(f"{outdir}/subs.csv", "w", newline="") as fs:
        wu, wr, wsub = csv.writer(fu), csv.writer(fr), csv.writer(fs)
        for i in range(n):
            uid = first_user + i
            created = now - (n - i) * 1000
            wu.writerow((uid, f"cust{i:06d}", 1_000_000_000 + i, f"Customer {i}", ("fa", "en", "ru")[i % 3],
                         "active", 0, created, created))
            wr.writerow((uid, role, created))
            tok = secrets.token_urlsafe(32)
            tokens.append(tok)
            wsub.writerow((i + 1, uid, plan, tok, "active", now + rnd.randint(1, 60) * day - rnd.randint(0, day), 0,
                           limit, rnd.randint(0, limit // 2), rnd.randint(0, limit), "dynamic", str(uuid.uuid4()),
                           secrets.token_urlsafe(18), 1, created, created))
    picked = tokens[::max(1, n // sample)][:sample]
    for name, toks in (("tokens", picked), ("near", [_near(t) for t in picked]),
                       ("unknown", [secrets.token_urlsafe(32) for _ in picked])):
        with open(f"{outdir}/{name}.txt", "w") as f:
            f.write("\n".join(toks) + "\n")
    rnd.shuffle(tokens)
    with open(f"{outdir}/all.txt", "w") as f:
        f.write("\n".join(tokens) + "\n")


USER_COLS = "id, username, telegram_id, display_name, language, status, failed_logins, created_at, updated_at"
ROLE_COLS = "user_id, role_id, granted_at"
SUB_COLS = ("id, user_id, plan_id, token, status, expires_at, hold_days, data_limit_bytes, used_bytes, "
            "lifetime_used_bytes, ip_type, credential_uuid, credential_secret, version, created_at, updated_at")


def load_sqlite(path, outdir):
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")

    def ins(table, cols, name):
        with open(f"{outdir}/{name}.csv", newline="") as f:
            marks = ", ".join("?" * len(cols.split(",")))
            db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", csv.reader(f))

    with db:
        ins("users", USER_COLS, "users")
        ins("user_roles", ROLE_COLS, "user_roles")
        ins("subscriptions", SUB_COLS, "subs")
    db.execute("ANALYZE")
    db.close()


def pg_copy_script(outdir):
    """psql commands loading the CSV files (explicit ids, so the sequences follow)."""
    for table, cols, name in (("users", USER_COLS, "users"), ("user_roles", ROLE_COLS, "user_roles"),
                              ("subscriptions", SUB_COLS, "subs")):
        print(f"\\copy {table} ({cols}) FROM '{outdir}/{name}.csv' WITH (FORMAT csv)")
    for table in ("users", "subscriptions"):
        print(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}));")
    for table in ("users", "user_roles", "subscriptions"):
        print(f"VACUUM ANALYZE {table};")


def scalar_sqlite(path, sql):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(db.execute(sql).fetchone()[0])


def ready_ms(port, path, timeout, t0_ns):
    """Polls path until it answers 200; prints the ms since t0_ns (epoch ns)."""
    while not probe(int(port), path):
        if time.time_ns() - int(t0_ns) > float(timeout) * 1e9:
            sys.exit(f"no 200 from 127.0.0.1:{port}{path} within {timeout} s")
        time.sleep(0.002)
    print(f"{(time.time_ns() - int(t0_ns)) / 1e6:.0f}")


def _get(url, ua=None):
    req = urllib.request.Request(url)
    if ua:
        req.add_header("user-agent", ua)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def verify(base, tokens, near, unknown, count):
    """A few real tokens answer 200 with a non-empty document in every format (the base64
    list decodes to links, sing-box is JSON with outbounds, clash-meta has proxies), the
    User-Agent picks sing-box for SFA, and unknown or near-miss tokens answer 404.
    Prints `links=.. base64=.. plain=.. singbox=.. clash=..` (bytes of the first token)."""
    count = int(count)
    read = lambda p: [l for l in open(p).read().split("\n") if l][:count]
    fails, sizes, links = [], {}, set()
    for i, tok in enumerate(read(tokens)):
        url = f"{base}/sub/{tok}"
        st, body, h = _get(url)
        if st != 200 or not body:
            fails.append(f"GET /sub/{tok[:8]}...: {st}, {len(body)} bytes: {body[:120]!r}")
            continue
        try:
            lines = base64.b64decode(body).decode().splitlines()
        except Exception as e:  # noqa: BLE001
            fails.append(f"/sub/{tok[:8]}...: the default (base64) document does not decode: {e}")
            continue
        links.add(len(lines))
        if not all("://" in l for l in lines):
            fails.append(f"/sub/{tok[:8]}...: a line of the list is not a link: {lines[:2]!r}")
        if "subscription-userinfo" not in h:
            fails.append(f"/sub/{tok[:8]}...: no subscription-userinfo header")
        checks = {
            "plain": (f"{url}?format=plain", None, lambda b: b.count(b"://") == len(lines)),
            "singbox": (url, "SFA/1.12", lambda b: len(json.loads(b).get("outbounds", [])) >= len(lines)),
            "clash": (f"{url}?format=clash-meta", None, lambda b: b"\nproxies:" in b and b.count(b"\n  - name:") >= len(lines)),
            "singbox-path": (f"{url}/sing-box", None, lambda b: len(json.loads(b).get("outbounds", [])) >= len(lines)),
        }
        for name, (u, ua, ok) in checks.items():
            st, b, _ = _get(u, ua)
            try:
                good = st == 200 and bool(b) and ok(b)
            except Exception:  # noqa: BLE001
                good = False
            if not good:
                fails.append(f"{name} of /sub/{tok[:8]}...: {st}, {len(b)} bytes: {b[:120]!r}")
            if i == 0:
                sizes[name] = len(b)
        if i == 0:
            sizes["base64"] = len(body)
    for p, what in ((near, "near-miss"), (unknown, "unknown")):
        for tok in read(p):
            st, b, _ = _get(f"{base}/sub/{tok}")
            if st != 404:
                fails.append(f"{what} token /sub/{tok[:8]}...: {st} (expected 404)")
    if fails:
        print("\n".join(fails), file=sys.stderr)
        sys.exit(f"{len(fails)} subscription checks failed")
    print(f"links={'/'.join(map(str, sorted(links)))} base64={sizes['base64']} plain={sizes['plain']} "
          f"singbox={sizes['singbox']} clash={sizes['clash']}")
PY

# ---------------------------------------------------------------------------- nginx
# The same wrk script as against MRJBot (same paths, tokens rotating), answered by nginx
# with its 1 KB file, so wrk does the same work on both sides.
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') serving a 1 KB static file (the machine's ceiling)"
nginx_setup "location /sub/ { try_files /1k.txt =404; }"
nginx_start
info "nginx on 127.0.0.1:$NG_PORT: GET /sub/<token> -> the 1 KB file (measured beside each engine)"

# ---------------------------------------------------------------------------- MRJBot
ADMIN_USER="benchadmin"
ADMIN_PW="bench-Admin-2024x"

# sub_wrk NAME PID CONNS SECONDS TOKEN_FILE BASE_URL [SUFFIX [USER_AGENT]]
sub_wrk() {
  SUB_TOKENS="$5" SUB_SUFFIX="${7:-}" SUB_UA="${8:-}" run_wrk "$1" "$2" "$LUA_SUB" "$3" "$4" "$6/"
}

# errors_line NAME: the wrk error counters of a run, each on its own
errors_line() {
  local out="$WORK/wrk-$1.txt"
  printf 'non-2xx %s, socket errors: connect %s, read %s, write %s, timeout %s' "$(kv "$out" bad_status)" \
    "$(kv "$out" connect_err)" "$(kv "$out" read_err)" "$(kv "$out" write_err)" "$(kv "$out" timeouts)"
}

hwm_mib() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
vmrss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

bench_engine() {
  local eng="$1" dir="$WORK/$eng" port base token url="" spid
  mkdir -p "$dir/data" "$dir/seed"
  local envs=(env -i "PATH=$PATH" "HOME=$HOME")
  if [[ "$eng" == postgres ]]; then
    pg_create_db
    url="$PG_URL"
    envs+=("DATABASE_URL=$url")
  fi
  local M=("${envs[@]}" "$MRJBOT_BIN")
  local store=(--data-dir "$dir/data")

  log "MRJBot on $eng: migrate, admin, topology through the API"
  (cd "$dir" && "${M[@]}" migrate "${store[@]}") | sed 's/^/   /'
  (cd "$dir" && printf '%s' "$ADMIN_PW" | "${M[@]}" admin create --username "$ADMIN_USER" --password-stdin "${store[@]}") |
    sed 's/^/   /'
  port="$(H freeport)"
  (cd "$dir" && exec "${M[@]}" serve --listen "127.0.0.1:$port" "${store[@]}") >>"$dir/serve.log" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  base="http://127.0.0.1:$port"
  H wait200 "$port" /readyz 60
  token="$(H login "$base" "$ADMIN_USER" "$ADMIN_PW")"
  local plan
  plan="$(H topology "$base" "$token")"
  info "plan $plan; nodes de-1, nl-1, fi-1 with 12 inbounds (vless reality, vless ws tls with 2 CDN hosts, trojan tls, ss 2022, hysteria2)"
  stop_pid "$spid"

  log "MRJBot on $eng: seed $SUBS customers with a subscription each (server stopped)"
  local role first t0 t1
  if [[ "$eng" == sqlite ]]; then
    role="$(H scalar-sqlite "$dir/data/mrjbot.db" "SELECT id FROM roles WHERE name = 'user'")"
    first="$(H scalar-sqlite "$dir/data/mrjbot.db" "SELECT COALESCE(MAX(id), 0) + 1 FROM users")"
  else
    role="$(psql -qAt "$url" -c "SELECT id FROM roles WHERE name = 'user'")"
    first="$(psql -qAt "$url" -c "SELECT COALESCE(MAX(id), 0) + 1 FROM users")"
  fi
  [[ -n "$role" && -n "$first" ]] || die "built-in role \`user\` missing"
  t0="$(date +%s.%N)"
  H gen-seed "$dir/seed" "$SUBS" "$first" "$role" "$plan" "$TOKENS"
  if [[ "$eng" == sqlite ]]; then
    H load-sqlite "$dir/data/mrjbot.db" "$dir/seed"
  else
    H pg-copy-script "$dir/seed" | psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null
  fi
  t1="$(date +%s.%N)"
  local nsubs
  if [[ "$eng" == sqlite ]]; then
    nsubs="$(H scalar-sqlite "$dir/data/mrjbot.db" "SELECT COUNT(*) FROM subscriptions WHERE token IS NOT NULL")"
  else
    nsubs="$(psql -qAt "$url" -c "SELECT COUNT(*) FROM subscriptions WHERE token IS NOT NULL")"
  fi
  ((nsubs == SUBS)) || die "seeded $nsubs subscriptions, expected $SUBS"
  info "seeded $nsubs subscriptions in $(calc "$t1 - $t0" | xargs printf '%.1f') s; $TOKENS tokens for the load, spread over the set"

  log "MRJBot on $eng: start on the seeded database, verify"
  idle_check "$eng start"
  port="$(H freeport)"
  base="http://127.0.0.1:$port"
  local first_tok
  first_tok="$(head -n1 "$dir/seed/tokens.txt")"
  t0="$(date +%s%N)"
  (cd "$dir" && exec "${M[@]}" serve --listen "127.0.0.1:$port" "${store[@]}") >>"$dir/serve.log" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  R["$eng.ready"]="$(H ready-ms "$port" "/sub/$first_tok" 120 "$t0")"
  local own
  own="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/serve.log" | grep -o 'startup_ms=[0-9]*' | tail -n1 | cut -d= -f2 || true)"
  info "exec -> first 200 on /sub/<token> (index of $SUBS loaded): ${R[$eng.ready]} ms (server's own startup_ms log: ${own:-?})"
  sleep "$IDLE_SECONDS"
  R["$eng.rss_start"]="$(vmrss_mib "$spid")"
  R["$eng.hwm_start"]="$(hwm_mib "$spid")"
  info "RSS ${IDLE_SECONDS} s after start: ${R[$eng.rss_start]} MiB (VmRSS; VmHWM so far ${R[$eng.hwm_start]} MiB; threads: $(awk '/^Threads/ {print $2}' "/proc/$spid/status"))"
  local sizes
  sizes="$(H verify "$base" "$dir/seed/tokens.txt" "$dir/seed/near.txt" "$dir/seed/unknown.txt" 5)" ||
    die "the subscription endpoint failed its checks on $eng (see above; server log: $dir/serve.log)"
  R["$eng.links"]="$(sed -n 's/.*links=\([^ ]*\).*/\1/p' <<<"$sizes")"
  for k in base64 plain singbox clash; do R["$eng.size_$k"]="$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<"$sizes")"; done
  info "5 tokens: 200 in every format (base64, plain, sing-box by ?format, by path and by User-Agent SFA/1.12, clash-meta);"
  info "  5 unknown and 5 near-miss tokens: 404. Documents: ${R[$eng.links]} links; base64 ${R[$eng.size_base64]} B, plain ${R[$eng.size_plain]} B, sing-box ${R[$eng.size_singbox]} B, clash-meta ${R[$eng.size_clash]} B"

  log "MRJBot on $eng: load (wrk -t$THREADS, $TOKENS tokens rotating; nginx beside it with the same script)"
  [[ "$eng" != postgres ]] || CUR_PG_DB="$PG_DB"
  local toks="$dir/seed/tokens.txt" save_pg="$CUR_PG_DB"
  CUR_PG_DB="" # nginx runs: no PostgreSQL accounting
  sub_wrk "nginx-$eng-warmup" "$NG_PID" "$CONNECTIONS" "$WARMUP" "$toks" "$NG_URL"
  sub_wrk "nginx-$eng" "$NG_PID" "$CONNECTIONS" "$DURATION" "$toks" "$NG_URL"
  report "nginx-$eng" get
  CUR_PG_DB="$save_pg"
  sub_wrk "$eng-warmup" "$spid" "$CONNECTIONS" "$WARMUP" "$toks" "$base"
  sub_wrk "$eng-base64" "$spid" "$CONNECTIONS" "$DURATION" "$toks" "$base"
  report "$eng-base64" get
  if [[ "$PERF" == 1 ]]; then
    if [[ -s "$WORK/perf-$eng-base64.txt" ]]; then
      info "perf (server, base64 run), top $PERF_TOP symbols by self time:"
      head -n "$PERF_TOP" "$WORK/perf-$eng-base64.txt" | sed 's/^/      /'
    else
      info "!! PERF=1 but no perf profile (is perf installed and allowed? perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null))"
    fi
  fi
  sub_wrk "$eng-c$HIGH_CONNECTIONS" "$spid" "$HIGH_CONNECTIONS" "$DURATION" "$toks" "$base"
  report "$eng-c$HIGH_CONNECTIONS" get
  info "  $HIGH_CONNECTIONS connections: $(errors_line "$eng-c$HIGH_CONNECTIONS")"
  sub_wrk "$eng-singbox" "$spid" "$CONNECTIONS" "$DURATION" "$toks" "$base" "" "SFA/1.12"
  report "$eng-singbox" get
  sub_wrk "$eng-clash" "$spid" "$CONNECTIONS" "$DURATION" "$toks" "$base" "?format=clash-meta"
  report "$eng-clash" get

  # Unknown tokens: random ones, and real ones with the last character changed. The
  # lookup hashes the token first, so both should cost the same; alternating A B A B
  # shows the run-to-run noise next to any difference.
  local r kind p50s_random=() p99s_random=() p50s_near=() p99s_near=()
  for r in 1 2; do
    for kind in random near; do
      local f="$dir/seed/unknown.txt"
      [[ "$kind" == random ]] || f="$dir/seed/near.txt"
      THREADS="$TIMING_THREADS" sub_wrk "$eng-miss-$kind-$r" "$spid" "$TIMING_CONNECTIONS" "$TIMING_SECONDS" "$f" "$base"
      local out="$WORK/wrk-$eng-miss-$kind-$r.txt" req notfound other
      req="$(kv "$out" requests)"
      notfound="$(kv "$out" bad_status)"
      other=$(($(kv "$out" connect_err) + $(kv "$out" read_err) + $(kv "$out" write_err) + $(kv "$out" timeouts)))
      printf '   %-22s %7.0f/s  p50 %6d us  p99 %6d us  (%s of %s answered >= 400, socket errors %s)\n' \
        "$eng-miss-$kind-$r" "$(calc "$req / ($(kv "$out" duration_us) / 1000000)")" "$(kv "$out" p50_us)" \
        "$(kv "$out" p99_us)" "$notfound" "$req" "$other"
      ((notfound == req && other == 0)) || R["$eng.miss_err"]=$((${R[$eng.miss_err]:-0} + req - notfound + other))
      if [[ "$kind" == random ]]; then
        p50s_random+=("$(kv "$out" p50_us)"); p99s_random+=("$(kv "$out" p99_us)")
      else
        p50s_near+=("$(kv "$out" p50_us)"); p99s_near+=("$(kv "$out" p99_us)")
      fi
    done
  done
  R["$eng.miss_random"]="$(H median "${p50s_random[@]}")/$(H median "${p99s_random[@]}")"
  R["$eng.miss_near"]="$(H median "${p50s_near[@]}")/$(H median "${p99s_near[@]}")"
  info "unknown-token latency (p50/p99, mean of 2 runs, us, -c$TIMING_CONNECTIONS): random ${R[$eng.miss_random]}, near-miss ${R[$eng.miss_near]}"

  R["$eng.hwm"]="$(hwm_mib "$spid")"
  info "RSS: start ${R[$eng.rss_start]} MiB -> after base64 ${R[$eng-base64.rss]} -> after c$HIGH_CONNECTIONS ${R[$eng-c$HIGH_CONNECTIONS.rss]} -> after sing-box ${R[$eng-singbox.rss]} -> after clash-meta ${R[$eng-clash.rss]} MiB (peak VmHWM ${R[$eng.hwm]} MiB)"

  if [[ "$COLD" == 1 ]]; then
    # Every token once or more: apps fetch a given subscription every few hours, so in
    # production most requests find no document rendered in the last minute.
    sub_wrk "$eng-every" "$spid" "$CONNECTIONS" "$DURATION" "$dir/seed/all.txt" "$base"
    report "$eng-every" get
    R["$eng.hwm_every"]="$(hwm_mib "$spid")"
    local done_n="${R[$eng-every.ok]}" distinct
    distinct=$((done_n < SUBS ? done_n : SUBS))
    info "  rotating over all $SUBS tokens: ~$distinct distinct subscriptions fetched; RSS after ${R[$eng-every.rss]} MiB (VmHWM ${R[$eng.hwm_every]} MiB)"
    if ((SETTLE_SECONDS > 0)); then
      sleep "$SETTLE_SECONDS"
      R["$eng.rss_settled"]="$(vmrss_mib "$spid")"
      info "  RSS after $SETTLE_SECONDS s idle: ${R[$eng.rss_settled]} MiB"
    fi
  fi

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
stop_pid "$NG_PID"

# ---------------------------------------------------------------------------- summary
HC="$HIGH_CONNECTIONS"
pct() { calc "$1 / $2 * 100" | xargs printf '%.0f%%'; }
ms() { [[ -n "${1:-}" ]] && printf '%s ms' "$1" || printf -- '-'; }
line() { printf '| %-35s | %-24s | %-10s | %-9s | %-10s | %-19s | %-10s | %-10s |\n' "$@"; }
log "summary: $SUBS subscriptions, 12 links each; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s over $TOKENS tokens on loopback; $NCPU CPUs shared by server and load generator"
echo
line "server" "req/s" "% of nginx" "p50" "p99" "errors @$HC" "RSS start" "RSS peak"
line "$(printf -- '-%.0s' $(seq 35))" "$(printf -- '-%.0s' $(seq 24))" "----------" "---------" "----------" "$(printf -- '-%.0s' $(seq 19))" "----------" "----------"
for eng in "${engines[@]}"; do
  line "MRJBot $eng (base64 list)" "${R[$eng-base64.rps]}/s" "$(pct "${R[$eng-base64.rps]}" "${R[nginx-$eng.rps]}")" \
    "$(ms "${R[$eng-base64.p50]}")" "$(ms "${R[$eng-base64.p99]}")" "${R[$eng-c$HC.err]}" \
    "${R[$eng.rss_start]} MiB" "${R[$eng.hwm]} MiB"
  line "  nginx 1 KB file (beside $eng)" "${R[nginx-$eng.rps]}/s" "100%" "$(ms "${R[nginx-$eng.p50]}")" \
    "$(ms "${R[nginx-$eng.p99]}")" "" "" ""
done
line "target" "" ">= 80%" "" "< 5 ms" "0" "" "< 100 MB"
line "Marzban 0.8.4 (10,000 users)" "0 in 15 s; 96/s at -c1" "" "" "" "" "" ""
line "PasarGuard 5.2.1" "64/s" "" "" "2.5 s" "" "" ""
echo
printf '| %-17s | %-22s | %-22s | %-22s | %-38s | %-44s |\n' "engine" "@$HC connections" "sing-box (UA SFA)" "clash-meta" \
  "unknown token p50/p99 (us)" "every token (render path)"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 19))" "$(printf -- '-%.0s' $(seq 24))" "$(printf -- '-%.0s' $(seq 24))" \
  "$(printf -- '-%.0s' $(seq 24))" "$(printf -- '-%.0s' $(seq 40))" "$(printf -- '-%.0s' $(seq 46))"
for eng in "${engines[@]}"; do
  every="-"
  [[ "$COLD" != 1 ]] || every="${R[$eng-every.rps]}/s, p99 ${R[$eng-every.p99]} ms, RSS ${R[$eng-every.rss]}${R[$eng.rss_settled]:+ -> ${R[$eng.rss_settled]}} MiB"
  printf '| %-17s | %-22s | %-22s | %-22s | %-38s | %-44s |\n' "MRJBot $eng" \
    "${R[$eng-c$HC.rps]}/s, p99 ${R[$eng-c$HC.p99]} ms" \
    "${R[$eng-singbox.rps]}/s, p99 ${R[$eng-singbox.p99]} ms" \
    "${R[$eng-clash.rps]}/s, p99 ${R[$eng-clash.p99]} ms" \
    "random ${R[$eng.miss_random]}, near ${R[$eng.miss_near]}" "$every"
done
echo
echo "Documents: ${R[${engines[0]}.links]} links; base64 ${R[${engines[0]}.size_base64]} B, sing-box ${R[${engines[0]}.size_singbox]} B, clash-meta ${R[${engines[0]}.size_clash]} B; nginx sends 1,024 B."
echo "nginx: the same wrk script and paths; every /sub/<token> answered with the 1 KB file. RSS: VmRSS ${IDLE_SECONDS} s after start; peak: VmHWM after the base64, @$HC, sing-box, clash-meta and unknown-token runs."
echo "unknown-token latency: -c$TIMING_CONNECTIONS, ${TIMING_SECONDS} s per run, 2 runs each alternating, mean of the runs' p50 and p99."
[[ -z "${R[disturbed]:-}" ]] ||
  echo "!! other processes competed for the CPUs during: ${R[disturbed]}(their figures are low; rerun on a quiet machine, e.g. WAIT_IDLE=300)"
echo
verdict() { # engine name value op target unit
  local ok
  ok="$(awk -v v="$3" -v t="$5" -v op="$4" 'BEGIN { print (op == "<" ? v < t : v >= t) ? "met" : "MISSED" }')"
  if [[ "$ok" == met ]]; then
    printf '   %-8s %-34s %s%s (target %s %s%s)\n' "$1" "$2" "$3" "$6" "$4" "$5" "$6"
  else
    printf '   %-8s %-34s %s%s (target %s %s%s) MISSED by %s%%\n' "$1" "$2" "$3" "$6" "$4" "$5" "$6" \
      "$(awk -v v="$3" -v t="$5" -v op="$4" 'BEGIN { printf "%.0f", (op == "<" ? (v - t) / t : (t - v) / t) * 100 }')"
  fi
}
for eng in "${engines[@]}"; do
  verdict "$eng" "req/s vs nginx 1 KB file" "$(calc "${R[$eng-base64.rps]} / ${R[nginx-$eng.rps]} * 100" | xargs printf '%.1f')" ">=" 80 "%"
  verdict "$eng" "p99 (-c$CONNECTIONS)" "${R[$eng-base64.p99]}" "<" 5 " ms"
  if ((${R[$eng-c$HC.err]} == 0)); then
    printf '   %-8s %-34s %s (target 0)\n' "$eng" "errors at $HC connections" "${R[$eng-c$HC.err]}"
  else
    printf '   %-8s %-34s %s (target 0) MISSED (%s)\n' "$eng" "errors at $HC connections" "${R[$eng-c$HC.err]}" "$(errors_line "$eng-c$HC")"
  fi
  verdict "$eng" "peak RSS (VmHWM)" "$(calc "${R[$eng.hwm]} * 1.048576" | xargs printf '%.1f')" "<" 100 " MB"
  [[ "$COLD" != 1 ]] ||
    verdict "$eng" "peak RSS after every token" "$(calc "${R[$eng.hwm_every]} * 1.048576" | xargs printf '%.1f')" "<" 100 " MB"
  errs=$((${R[$eng-base64.err]} + ${R[$eng-singbox.err]} + ${R[$eng-clash.err]} + ${R[$eng.miss_err]:-0}))
  [[ "$COLD" != 1 ]] || errs=$((errs + ${R[$eng-every.err]}))
  ((errs == 0)) || printf '   %-8s !! %d failed requests in the other load runs (see above)\n' "$eng" "$errs"
done
echo
echo "total time: $(($(date +%s) - T_START)) s"
