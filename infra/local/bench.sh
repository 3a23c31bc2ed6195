#!/usr/bin/env bash
# make bench (issue 5): measures the release build and rewrites the numbers in
# docs/benchmarks.md (only between its <!-- bench:… --> markers; the prose stays).
#   1. builds the harness (infra/bench) and the template's function bootstraps
#      (`bench functions` lists them), in release: the deploy profile;
#   2. runs criterion (adapters/benches: CPU per order) while the box is quiet;
#   3. runs the harness against fresh emulators: cold starts against a Runtime
#      API stub, intake and dispatch throughput against raw baselines, sizes,
#      capacity units, webhook events, 404 timings, log bytes, the cost, idle
#      cost and scale tables: every region of the page, each stamped with the
#      run's commit (the harness fails on a region it left unstamped).
# QUICK=1: the release build, every step with tiny counts (numbers
# meaningless, doc untouched: a copy under the target directory is written).
# --smoke (make test): the same on the debug build with criterion run for a
# moment, so a change that breaks any step of the bench fails make test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# Absolute: criterion runs in the adapters crate's folder, the harness here,
# and both must find one criterion directory (CARGO_TARGET_DIR may be relative).
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

log() { echo "bench: $(date -u +%T) $*" >&2; }

case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") SMOKE="" ;;
  *) echo "usage: infra/local/bench.sh [--smoke]" >&2; exit 2 ;;
esac

if [[ -n "$SMOKE" ]]; then
  BUILD=() PROFILE_DIR=debug BENCH_PROFILE=(--profile dev)
else
  BUILD=(--release) PROFILE_DIR=release BENCH_PROFILE=()
fi
BIN="$TARGET/$PROFILE_DIR"

log "build of the harness ($PROFILE_DIR)"
cargo build --quiet "${BUILD[@]}" -p bench
mapfile -t FUNCTIONS < <("$BIN/bench" functions)
log "build of the bootstraps: ${FUNCTIONS[*]} ($PROFILE_DIR; release takes minutes on 2 cores)"
cargo build --quiet "${BUILD[@]}" $(printf -- '-p %s ' "${FUNCTIONS[@]}")

if [[ -n "$SMOKE" || "${QUICK:-}" == 1 ]]; then
  OUT="$TARGET/bench-$([[ -n "$SMOKE" ]] && echo smoke || echo quick)"
  mkdir -p "$OUT" && cp docs/benchmarks.md "$OUT/benchmarks.md"
  # Criterion's own output stays apart from make bench's.
  export CRITERION_HOME="$OUT/criterion"
  CRITERION_ARGS=(--warm-up-time 0.01 --measurement-time 0.01 --sample-size 10)
  DOC="$OUT/benchmarks.md"
  HARNESS_ARGS=(--quick)
else
  OUT="$TARGET/bench"
  export CRITERION_HOME="$TARGET/criterion"
  CRITERION_ARGS=()
  DOC=docs/benchmarks.md
  HARNESS_ARGS=()
fi
mkdir -p "$OUT"

log "CPU per order (criterion)"
cargo bench --quiet "${BENCH_PROFILE[@]}" -p adapters --bench cpu_per_order -- \
  --noplot "${CRITERION_ARGS[@]}" | tee "$OUT/criterion.log" | { [[ -n "$SMOKE" ]] && cat >/dev/null || cat; }

export BENCH_RUSTC BENCH_COMMIT
BENCH_RUSTC="$(rustc -V)"
BENCH_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
log "cold start and throughput against the emulators"
# The dispatcher prints one metrics line per callback on stdout; keep them out of the way.
infra/local/emulators.sh exec -- "$BIN/bench" \
  --bin-dir "$BIN" --criterion-dir "$CRITERION_HOME" --doc "$DOC" --json "$OUT/results.json" \
  "${HARNESS_ARGS[@]}" >"$OUT/stdout.log"
log "done: $DOC (raw results in $OUT/results.json)"
