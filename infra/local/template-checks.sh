#!/usr/bin/env bash
# Checks infra/template.yaml the way a deploy would, offline and without credentials:
# cfn-lint, `sam validate --lint`, then `sam build` (cargo-lambda release build of
# every function). Uses only the pinned tools in .local/venv, never global ones.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv"
TEMPLATE="infra/template.yaml"

"$ROOT/infra/local/tools.sh" python
cd "$ROOT"
export SAM_CLI_TELEMETRY=0 # no network calls home from CI

echo "template-checks: cfn-lint" >&2
"$VENV/bin/cfn-lint" -- "$TEMPLATE"

echo "template-checks: sam validate --lint" >&2
"$VENV/bin/sam" validate --lint --region us-east-1 -t "$TEMPLATE"

echo "template-checks: sam build" >&2
# sam finds `cargo-lambda` (and cargo-lambda finds zig, via python -m ziglang) on
# PATH, so the venv goes first. cargo-lambda rejects --target-dir, so share the
# workspace's target/ through CARGO_TARGET_DIR: warm rebuilds stay incremental.
PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" \
  "$VENV/bin/sam" build --region us-east-1 -t "$TEMPLATE" \
  --build-in-source --build-dir "$ROOT/.local/sam-build" --cache-dir "$ROOT/.local/sam-cache"
