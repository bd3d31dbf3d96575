#!/usr/bin/env bash
# Property-based API tests: runs schemathesis against the served OpenAPI document, once on
# SQLite and once on PostgreSQL, signed in as an admin, and fails if any response is a 5xx
# or contradicts the document (status code, content type, body schema).
#
# Usage: ./scripts/schemathesis.sh
# Environment:
#   CARGO_TARGET_DIR       build directory (default /var/tmp/mrjbot-target)
#   ST_ENGINES             engines to test, in order (default "sqlite postgres")
#   ST_PG_URL              PostgreSQL server, without database (default postgres://postgres@127.0.0.1:5432)
#   ST_MAX_EXAMPLES        test cases per operation and phase (default 30)
#   ST_MAX_TIME            time budget of one schemathesis run, seconds (default 60)
#   ST_WORKERS             concurrent schemathesis workers (default 1: with more, Python 3.11's
#                          ast module can fail in hypothesis' worker threads with "AST constructor
#                          recursion depth mismatch", CPython gh-106905, an error of the tool)
#   ST_SEED                fixed seed, to replay a run (default: random, printed)
#   ST_KEEP                1 keeps the work directories (server logs, reports)
#
# What is not tested: the operations that end the admin's own session, whatever the input
# (logout, changing one's password, re-passwording a user, which could be the admin: every
# session of the target ends). Deleting, disabling or demoting oneself is refused by the
# service itself, so the user operations stay in.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mrjbot-target}"
ENGINES="${ST_ENGINES:-sqlite postgres}"
PG_URL="${ST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-30}"
MAX_TIME="${ST_MAX_TIME:-60}"
WORKERS="${ST_WORKERS:-1}"
BIN="$CARGO_TARGET_DIR/debug/mrjbot"

if command -v schemathesis >/dev/null 2>&1; then
  ST=(schemathesis)
elif python3 -m schemathesis.cli --version >/dev/null 2>&1; then
  ST=(python3 -m schemathesis.cli)
else
  echo "schemathesis is not installed; run ./scripts/test-deps.sh" >&2
  exit 2
fi

echo "== building mrjbot (debug)"
cargo build -p mrjbot --locked

# State of the engine being tested, for the cleanup trap.
SERVER_PID=""
ST_PID=""
WORK=""
PG_DB=""

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

cleanup() {
  if [ -n "$ST_PID" ]; then
    kill -TERM "$ST_PID" 2>/dev/null || true
    wait "$ST_PID" 2>/dev/null || true
    ST_PID=""
  fi
  stop_server
  if [ -n "$PG_DB" ]; then
    psql "$PG_URL/postgres" -qAt -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $PG_DB" >&2
    PG_DB=""
  fi
  if [ -n "$WORK" ]; then
    if [ "${ST_KEEP:-0}" = 1 ]; then
      echo "kept $WORK"
    else
      rm -rf "$WORK"
    fi
    WORK=""
  fi
}
trap 'cleanup; rm -f "${SUMMARY:-}"' EXIT
trap 'exit 130' INT TERM

die() {
  echo "$*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Prints the summary line of one engine from schemathesis' JSON report.
summarize() {
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
path, engine, status = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open(path) as f:
        r = json.load(f)
except (OSError, ValueError):
    print(f"schemathesis [{engine}]: {status} (no report)")
    sys.exit(0)
ops, tc = r["operations"], r["test_cases"]
failures = sum(g["count"] for g in r.get("failures", []))
errors = sum(g["count"] for g in r.get("errors", []))
print(
    f"schemathesis [{engine}]: {status}: {ops['tested']}/{ops['selected']} operations tested "
    f"({ops['total']} in the document), {tc['generated']} test cases, "
    f"{failures} failures, {errors} errors, {r['running_time']:.1f}s, seed {r['seed']}"
)
for g in r.get("failures", []):
    print(f"  failure: {g['title']} x{g['count']} in {', '.join(g['operations'])}")
for g in r.get("errors", []):
    print(f"  error: {g['title']} x{g['count']}")
EOF
}

run_engine() {
  local engine=$1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/mrjbot-st-$engine.XXXXXX")
  local data="$WORK/data" port
  mkdir -p "$data"
  port=$(free_port)

  # A fresh store, and nothing inherited from the caller's configuration.
  local -a env=(env -u DATABASE_URL -u MRJBOT_CONFIG -u MRJBOT_DATABASE_URL -u MRJBOT_LISTEN -u MRJBOT_DATA_DIR
    MRJBOT_LOG_LEVEL=warn
    MRJBOT_AUTH__LOGIN_PER_MINUTE=100000 MRJBOT_AUTH__LOGIN_BURST=100000
    MRJBOT_AUTH__ACCESS_TTL_SECS=3600)
  if [ "$engine" = postgres ]; then
    PG_DB="mrjbot_st_$$_$RANDOM"
    psql "$PG_URL/postgres" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null || {
      PG_DB=""
      die "schemathesis [$engine]: cannot create a database on $PG_URL (is PostgreSQL running? see ./scripts/test-deps.sh)"
    }
    env+=("DATABASE_URL=$PG_URL/$PG_DB")
  fi

  # The admin the tests act as. An unusual name, so generated logins never lock it out.
  local user="st_admin_$RANDOM" password
  password="St-$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')-9"
  printf '%s\n' "$password" |
    (cd "$WORK" && "${env[@]}" "$BIN" admin create --username "$user" --password-stdin --data-dir "$data") \
      >"$WORK/admin.log" 2>&1 || {
    cat "$WORK/admin.log" >&2
    die "schemathesis [$engine]: could not create the admin"
  }

  (cd "$WORK" && exec "${env[@]}" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$data") \
    >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  local base="http://127.0.0.1:$port"
  local ready=0
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then
      ready=1
      break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    tail -n 50 "$WORK/server.log" >&2
    die "schemathesis [$engine]: the server did not become ready"
  fi

  local token
  token=$(
    python3 -c 'import json, sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' \
      "$user" "$password" |
      curl -fsS --max-time 10 -H 'Content-Type: application/json' --data-binary @- "$base/api/v1/auth/login" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
  ) || {
    tail -n 50 "$WORK/server.log" >&2
    die "schemathesis [$engine]: could not sign in"
  }

  # A little of everything, so that generated ids and references hit real rows and the
  # tests get past "not found" into the services (subscription lifecycle, inbounds, ...).
  seed() {
    curl -fsS --max-time 10 -o /dev/null -X POST -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' --data-binary "$2" "$base$1" ||
      die "schemathesis [$engine]: seeding failed: POST $1 $2"
  }
  seed /api/v1/users '{"telegram_id": 100000001, "display_name": "Customer", "language": "en"}'
  seed /api/v1/users '{"username": "st-seller", "password": "Seller-pass-123", "roles": ["seller"]}'
  seed /api/v1/roles '{"name": "st-helper", "description": "seeded", "permissions": ["subscriptions.read"]}'
  seed /api/v1/users/2/roles '{"role": "st-helper", "expires_at": "2099-01-01T00:00:00Z"}'
  seed /api/v1/plans '{"name": "Basic", "duration_days": 30, "data_limit_bytes": 10000000000, "device_limit": 2,
    "prices": [{"currency": "USD", "amount_minor": 500}, {"currency": "IRR", "amount_minor": 3000000}]}'
  seed /api/v1/plans '{"name": "Unlimited", "duration_days": 90, "start_on_first_use": true, "ip_type": "constant"}'
  seed /api/v1/nodes '{"name": "st-node-1", "kind": "agent", "address": "node1.example.com", "capacity": 100}'
  seed /api/v1/nodes '{"name": "st-panel", "kind": "xui", "address": "10.0.0.2", "api_url": "https://10.0.0.2:2053",
    "api_username": "admin", "api_password": "secret"}'
  seed /api/v1/nodes/1/inbounds '{"tag": "vless-reality", "protocol": "vless", "port": 443, "security": "reality",
    "settings": {"sni": "example.com", "public_key": "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0", "short_id": "0123abcd"}}'
  seed /api/v1/nodes/1/inbounds '{"tag": "hy2", "protocol": "hysteria2", "port": 8443}'
  seed /api/v1/subscriptions '{"user_id": 2, "plan_id": 1}'
  seed /api/v1/subscriptions '{"user_id": 2, "plan_id": 2, "node_id": 1}'
  seed /api/v1/subscriptions '{"user_id": 2, "plan_id": 1, "start": "temporary"}'
  seed /api/v1/subscriptions '{"user_id": 3, "plan_id": 2, "note": "seeded"}'
  # Money: cards, discount codes, orders with open and approved card payments, a wallet.
  seed /api/v1/cards '{"number": "6037997599514529", "owner_name": "Ali Rezaei", "bank": "Melli", "daily_cap_minor": 500000000}'
  seed /api/v1/cards '{"number": "6219861034529007", "owner_name": "Sara Ahmadi", "weight": 2, "is_active": false}'
  seed /api/v1/discount-codes '{"code": "WELCOME10", "kind": "percent", "value": 10, "max_uses": 100}'
  seed /api/v1/discount-codes '{"code": "FIXED5", "kind": "fixed", "value": 50000, "currency": "IRR", "plan_ids": [1]}'
  seed /api/v1/orders '{"user_id": 2, "kind": "purchase", "plan_id": 1, "currency": "IRR"}'
  seed /api/v1/orders '{"user_id": 2, "kind": "topup", "amount_minor": 300000, "currency": "IRR"}'
  seed /api/v1/orders '{"user_id": 3, "kind": "topup", "amount_minor": 200000, "currency": "IRR"}'
  seed /api/v1/orders/1/pay '{"method": "card"}'
  seed /api/v1/orders/2/pay '{"method": "card"}'
  seed /api/v1/payments/2/approve '{}'
  seed /api/v1/users/2/wallet/adjust '{"amount_minor": 1000000, "currency": "IRR", "note": "seeded"}'
  seed /api/v1/tickets '{"subject": "Cannot connect", "body": "The link stopped working."}'
  seed /api/v1/tickets/1/messages '{"body": "Please update the subscription in your app."}'
  seed /api/v1/broadcasts '{"segment": "all", "body": "New servers are online."}'

  # schemathesis 4.x scans 2xx bodies for same-origin URLs (Location-header inference) and
  # crashes with "ValueError: Invalid IPv6 URL" on any string such as "http://[x" (e.g. a
  # generated panel api_url echoed back). The API sends no Location headers, so that
  # inference has nothing to learn here; keep only the dependency analysis.
  printf '[phases.stateful.inference]\nalgorithms = ["dependency-analysis"]\n' >"$WORK/schemathesis.toml"

  local -a args=(--config-file "$WORK/schemathesis.toml" run "$base/api/v1/openapi.json"
    --header "Authorization: Bearer $token"
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
    --exclude-path /api/v1/auth/logout
    --exclude-path /api/v1/auth/password
    --exclude-path '/api/v1/users/{id}/password'
    --max-examples "$MAX_EXAMPLES"
    --max-time "$MAX_TIME"
    --workers "$WORKERS"
    --request-timeout 10
    --generation-database none
    --report json --report-json-path "$WORK/report.json"
    --no-color)
  if [ -n "${ST_SEED:-}" ]; then
    args+=(--seed "$ST_SEED")
  fi

  echo "== schemathesis on $engine ($base)"
  local rc=0
  # In the background so that a signal reaches the trap at once, not after the run.
  (cd "$WORK" && exec timeout --kill-after=15 $((MAX_TIME + 60)) "${ST[@]}" "${args[@]}") &
  ST_PID=$!
  wait "$ST_PID" || rc=$?
  ST_PID=""

  local status=PASSED
  if [ "$rc" != 0 ]; then
    status="FAILED (exit code $rc)"
    echo "-- last server log lines ($engine):"
    tail -n 30 "$WORK/server.log"
  fi
  summarize "$WORK/report.json" "$engine" "$status" | tee -a "$SUMMARY"
  [ "$rc" = 0 ] || overall=1
  cleanup
}

SUMMARY=$(mktemp "${TMPDIR:-/tmp}/mrjbot-st-summary.XXXXXX")
overall=0
for engine in $ENGINES; do
  case "$engine" in
    sqlite | postgres) ;;
    *)
      echo "unknown engine: $engine (sqlite or postgres)" >&2
      exit 2
      ;;
  esac
  # Setting up an engine must work; a failure there ends the script (see die).
  run_engine "$engine"
done

echo
echo "== summary"
cat "$SUMMARY"
rm -f "$SUMMARY"
exit "$overall"
