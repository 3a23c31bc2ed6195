#!/usr/bin/env bash
# Issue 21's measurement (docs/reliability.md, "A burst through make run"):
#   infra/local/burst.sh [ORDERS [DUE_ORDERS]]     (defaults 3000 and 2605)
# The soak's --burst (infra/soak) against the local stack on the emulators
# `make run` starts (`emulators.sh stack`), DynamoDB on disk as `make run`
# keeps it, with the deployed schedule and breaker:
#  1. ORDERS orders, the partner failing 30 % of first posts at random, twice
#     side by side on this machine at once: breaker on, breaker off; beside
#     them, the set-up of step 2: DUE_ORDERS orders created and shipped
#     while the partner is down, then stopped (the emulators too: their
#     queue is lost, as when `make run` stops), their callbacks left due;
#  2. the same burst meeting those callbacks: a run on the set-up's data
#     (re-arming them, as `make run` does with a new queue) takes the burst.
# Prints each run's figures; logs stay in the printed directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ORDERS="${1:-3000}"
DUE_ORDERS="${2:-2605}"
cargo build --quiet -p local-stack -p soak --bins
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/burst.XXXXXX")"
cp "$TARGET/debug/soak" "$TARGET/debug/local-stack" "$OUT/"
echo "burst: logs in $OUT"

# run NAME SOAK-ARGS...: one soak under its own emulators and data directory.
run() {
  local name=$1
  shift
  DYNAMODB_DATA_DIR="$OUT/data-$name" infra/local/emulators.sh stack -- \
    "$OUT/soak" --burst --drain-timeout 1800 "$@" >"$OUT/$name.log" 2>&1
}

summary() {
  echo "== $1"
  grep -E 'orders sent / accepted|callbacks due|^  delivered|lost|duplicated after|time to send|still due when|time to drain|circuit breaker opened|held by the breaker|SIGKILL|soak: (PASSED|FAILED)|service CPU' "$OUT/$1.log" || tail -n 20 "$OUT/$1.log"
}

status=0
date -u +"burst: 1. breaker on and off side by side (and step 2's set-up), from %H:%M:%S UTC"
uptime
run on --orders "$ORDERS" & on=$!
run off --orders "$ORDERS" --breaker-off & off=$!
run due --orders "$DUE_ORDERS" --leave-due & setup=$!
wait "$on" || status=1
wait "$off" || status=1
wait "$setup" || status=1
summary on
summary off
grep -E 'left due' "$OUT/due.log" || tail -n 20 "$OUT/due.log"
mv "$OUT/due.log" "$OUT/due-setup.log"

date -u +"burst: 2. with callbacks already due, from %H:%M:%S UTC"
uptime
run due --orders $((DUE_ORDERS + ORDERS)) --already-sent "$DUE_ORDERS" || status=1
summary due
uptime
exit "$status"
