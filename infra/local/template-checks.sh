#!/usr/bin/env bash
# Checks infra/template.yaml the way a deploy would, offline and without credentials:
# cfn-lint (informational findings included), `sam validate --lint`, `sam build`
# (cargo-lambda release build of every function), checkov (each skip in the
# template says why), then the built bootstraps on AWS's event shapes against the
# emulators (tests/tests/deployed_bootstraps.rs). Uses only the pinned tools in .local/,
# never global ones.
#   SAM_BUILD_DIR  where sam build writes (default .local/sam-build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.local/venv"
TEMPLATE="infra/template.yaml"
export SAM_BUILD_DIR="${SAM_BUILD_DIR:-$ROOT/.local/sam-build}"

"$ROOT/infra/local/tools.sh" python
cd "$ROOT"
export SAM_CLI_TELEMETRY=0 # no network calls home from CI

# Prints how long each step took, for the make test budget.
step() {
  local name=$1 started=$SECONDS
  shift
  echo "template-checks: $name" >&2
  "$@"
  echo "template-checks: $name took $((SECONDS - started)) s" >&2
}

step "cfn-lint --include-checks I" "$VENV/bin/cfn-lint" --include-checks I -- "$TEMPLATE"

step "sam validate --lint" "$VENV/bin/sam" validate --lint --region us-east-1 -t "$TEMPLATE"

# checkov installs (a one-off download on a fresh clone) while the build compiles.
"$ROOT/infra/local/tools.sh" checkov &
checkov_install=$!
# sam finds `cargo-lambda` (and cargo-lambda finds zig, via python -m ziglang) on
# PATH, so the venv goes first. cargo-lambda rejects --target-dir, so share the
# workspace's target/ through CARGO_TARGET_DIR: warm rebuilds stay incremental.
step "sam build" env PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" \
  "$VENV/bin/sam" build --region us-east-1 -t "$TEMPLATE" \
  --build-in-source --build-dir "$SAM_BUILD_DIR" --cache-dir "$ROOT/.local/sam-cache"
wait "$checkov_install"

# --skip-download: offline (no Prisma Cloud guidelines); a failed check fails the step.
step "checkov" "$ROOT/.local/checkov/bin/checkov" -f "$TEMPLATE" --framework cloudformation \
  --compact --quiet --skip-download

# What sam build just built, started as Lambda starts it, on SAM CLI events.
# --workspace: the same feature resolution as make test's test run, so only
# this test's crate is compiled again, not its dependencies.
step "deployed bootstraps" "$ROOT/infra/local/emulators.sh" exec -- \
  cargo test --quiet --workspace --features integration-tests/deployed --test deployed_bootstraps
