#!/usr/bin/env bash
# Crate boundaries: the pure domain pulls no runtime or database; the store knows nothing
# of HTTP; the services serve no HTTP (they only call out: payment gateways and the Bot
# API, through reqwest, whose own internals use tower-http). Fails when a dependency
# crosses a boundary.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
forbid() { # crate dependency
  if cargo tree -p "$1" -e normal --prefix none 2>/dev/null | awk '{print $1}' | grep -qx "$2"; then
    echo "boundary violated: $1 depends on $2"; fail=1
  fi
}
for dep in sqlx tokio axum reqwest; do forbid mrjbot-domain "$dep"; done
for dep in sqlx tokio axum mrjbot-domain mrjbot-db mrjbot-app; do forbid mrjbot-i18n "$dep"; done
for dep in axum tower-http utoipa-axum reqwest; do forbid mrjbot-db "$dep"; done
for dep in axum utoipa-axum tower_governor askama; do forbid mrjbot-app "$dep"; done
# The wire types are plain data; the agent beside the VPN core stays small and knows
# nothing of the control plane's store, pages or bot.
for dep in tokio reqwest mrjbot-domain mrjbot-db mrjbot-app; do forbid mrjbot-node-proto "$dep"; done
for dep in sqlx askama teloxide mrjbot-domain mrjbot-db mrjbot-app mrjbot-api; do forbid mrjbot-node "$dep"; done
[ "$fail" = 0 ] && echo "crate boundaries ok"
exit "$fail"
