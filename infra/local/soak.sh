#!/usr/bin/env bash
# The soak (infra/soak) under throw-away emulators:
#   infra/local/soak.sh [soak options, e.g. --orders 300]
# Builds the soak and the local stack, copies both binaries into a private
# directory (the soak restarts the service from its binary after each
# SIGKILL: a rebuild in the target directory meanwhile must not change what
# is restarted), and runs the soak under infra/local/emulators.sh, which
# keeps the emulators up across the service's restarts. They are exactly
# the ones `make run` starts (`emulators.sh stack`: SQS from ministack; moto's
# SQS stalls once about 500 messages wait, docs/reliability.md), so what the
# soak passes on is what a developer runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
cargo build --quiet -p local-stack -p soak --bins
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$(mktemp -d "${TMPDIR:-/tmp}/soak-bin.XXXXXX")"
trap 'rm -rf "$BIN"' EXIT
cp "$TARGET/debug/soak" "$TARGET/debug/local-stack" "$BIN/"
infra/local/emulators.sh stack -- "$BIN/soak" "$@"
