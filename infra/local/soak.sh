#!/usr/bin/env bash
# The soak (tools/soak) under throw-away emulators:
#   infra/local/soak.sh [soak options, e.g. --orders 300]
# Builds the soak and the local stack, copies both binaries into a private
# directory (the soak restarts the service from its binary after each
# SIGKILL: a rebuild in the target directory meanwhile must not change what
# is restarted), and runs the soak under infra/local/emulators.sh, which
# keeps the emulators up across the service's restarts. SQS comes from
# ministack (SQS_EMULATOR=moto to compare): moto's SQS stalls once about 500
# messages wait, far below a 10,000-order backlog (docs/reliability.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo build --quiet -p local-stack -p soak --bins
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$(mktemp -d "${TMPDIR:-/tmp}/soak-bin.XXXXXX")"
trap 'rm -rf "$BIN"' EXIT
cp "$TARGET/debug/soak" "$TARGET/debug/local-stack" "$BIN/"
SQS_EMULATOR="${SQS_EMULATOR:-ministack}" infra/local/emulators.sh exec -- "$BIN/soak" "$@"
