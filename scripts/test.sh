#!/usr/bin/env bash
# The whole test suite: every test on SQLite and on PostgreSQL, then schemathesis against
# the OpenAPI document on both engines. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/test-deps.sh

# Leftovers of interrupted runs.
psql -h 127.0.0.1 -U postgres -d test -Atqc \
  "SELECT 'DROP DATABASE IF EXISTS ' || datname || ' WITH (FORCE);' FROM pg_database WHERE datname LIKE 'mrjbot_t_%'" \
  2>/dev/null | psql -h 127.0.0.1 -U postgres -d test -q >/dev/null 2>&1 || true

export CI="${CI:-true}"   # PostgreSQL cases fail instead of skipping
export TEST_PG_ADMIN_URL="${TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Real-core tests find sing-box here (installed by test-deps.sh; TOOLS_DIR is not exported).
export SING_BOX_BIN="${SING_BOX_BIN:-${TOOLS_DIR:-/var/tmp/mrjbot-tools}/bin/sing-box}"

./scripts/check-boundaries.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
./scripts/schemathesis.sh
# One closing line for the whole suite (cargo's last line is only the last binary's).
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
