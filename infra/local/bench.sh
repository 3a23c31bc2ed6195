#!/usr/bin/env bash
# make bench (issue 5): measures the release build and rewrites the numbers in
# docs/benchmarks.md (only between its <!-- bench:… --> markers; the prose stays).
#   1. builds the four release bootstraps (the workspace release profile is the
#      deploy profile) and the harness (infra/bench), also in release;
#   2. runs criterion (adapters/benches: CPU per order) while the box is quiet;
#   3. runs the harness against fresh emulators: cold starts against a Runtime
#      API stub, intake and dispatch throughput against raw baselines, sizes.
# QUICK=1 runs a short smoke version (meaningless numbers, doc untouched).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
FUNCTIONS=(order-intake warehouse-events callback-dispatch)

log() { echo "bench: $*" >&2; }

log "release build of the bootstraps (a few minutes on 2 cores)"
cargo build --release $(printf -- '-p %s ' "${FUNCTIONS[@]}")
log "release build of the harness"
cargo build --release -p bench

if [[ "${QUICK:-}" == 1 ]]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 1)
  HARNESS_ARGS=(--quick --doc "$TARGET/bench/benchmarks-quick.md")
  mkdir -p "$TARGET/bench" && cp docs/benchmarks.md "$TARGET/bench/benchmarks-quick.md"
else
  CRITERION_ARGS=()
  HARNESS_ARGS=(--doc docs/benchmarks.md)
fi

log "CPU per order (criterion)"
cargo bench -p adapters --bench cpu_per_order -- --noplot "${CRITERION_ARGS[@]}"

export BENCH_RUSTC BENCH_COMMIT
BENCH_RUSTC="$(rustc -V)"
BENCH_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
log "cold start and throughput against the emulators"
# The dispatcher prints one metrics line per callback on stdout; keep them out of the way.
infra/local/emulators.sh exec -- "$TARGET/release/bench" \
  --bin-dir "$TARGET/release" --criterion-dir "$TARGET/criterion" \
  --json "$TARGET/bench/results.json" "${HARNESS_ARGS[@]}" >"$TARGET/bench-stdout.log"
log "done: docs/benchmarks.md (raw results in $TARGET/bench/results.json)"
