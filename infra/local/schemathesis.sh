#!/usr/bin/env bash
# API conformance: schemathesis sends generated requests to the local stack and
# checks every answer against docs/openapi.yaml. Fails on any 5xx, any status the
# document does not list for the operation, and any body or header that breaks
# its schema. Runs under the emulators:
#   infra/local/emulators.sh exec -- infra/local/schemathesis.sh
# Bounded and reproducible: a fixed seed and at most SCHEMATHESIS_MAX_EXAMPLES
# generated cases per operation and phase (default 30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SPEC="$ROOT/docs/openapi.yaml"
VENV="$ROOT/.local/venv"
SCHEMATHESIS="$VENV/bin/schemathesis"
PYTHON="$VENV/bin/python"
SERVER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/local-stack"
READY_TIMEOUT=60 # seconds
SEED="${SCHEMATHESIS_SEED:-20261120}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
# Fixed demo keys: the local stack stores them for client "20" (the spec sample's)
# and for the warehouses mabang and lax. Test values, valid only on this stack.
ERP_KEY="wk_schemathesis_erp_0000000000000000000000000000000000000000000"
WMS_KEY="wk_schemathesis_wms_0000000000000000000000000000000000000000000"
# Every run: no 5xx; only documented statuses, content types and headers; bodies
# that match their schema.
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"
# Runs with a valid key also check that what the document forbids is refused
# (negative_data_rejection), that undocumented methods answer 405 with the right
# Allow header, that a created order can be read back, and that a broken
# credential is refused (ignored_auth).
KEYED_CHECKS="$CHECKS,negative_data_rejection,unsupported_method,allow_header_conformance,missing_required_header,ensure_resource_availability,use_after_free,ignored_auth"

log() { echo "schemathesis.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" && -n "${AWS_ENDPOINT_URL_SQS:-}" ]] \
  || die "needs the emulators: run it as infra/local/emulators.sh exec -- $0"
[[ -x "$SCHEMATHESIS" ]] || die "$SCHEMATHESIS missing: run infra/local/tools.sh python"

cargo build --quiet -p local-stack --bin local-stack

mkdir -p "$ROOT/.local/run"
RUN_DIR="$(mktemp -d "$ROOT/.local/run/schemathesis.XXXXXX")"
# No state carried between runs (schemathesis would otherwise replay the crashes
# of earlier runs from ./.schemathesis), and Hypothesis's caches out of the tree.
printf '[cache]\nenabled = false\n' >"$RUN_DIR/schemathesis.toml"
export HYPOTHESIS_STORAGE_DIRECTORY="$ROOT/.local/hypothesis"
SERVER_PID=""

# Stops exactly the server this script started.
# shellcheck disable=SC2317 # the EXIT trap
on_exit() {
  local status=$? i
  trap '' INT TERM HUP
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if ((status == 0)); then rm -rf "$RUN_DIR"; else log "server log and reports kept in $RUN_DIR"; fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
# No CALLBACK_URL: callbacks go to the stack's built-in partner, which accepts them.
env -u CALLBACK_URL PORT="$PORT" LOCAL_API_KEY="$ERP_KEY" LOCAL_WMS_KEY="$WMS_KEY" \
  RUST_LOG="${RUST_LOG:-warn}" "$SERVER" </dev/null >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + READY_TIMEOUT))
until python3 "$ROOT/infra/local/http_request.py" probe "$BASE/"; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 30 "$RUN_DIR/server.log" >&2
    die "the local stack exited during start-up"
  fi
  if ((SECONDS >= deadline)); then
    tail -n 30 "$RUN_DIR/server.log" >&2
    die "the local stack is not answering on port $PORT after ${READY_TIMEOUT}s"
  fi
  sleep 0.2
done
log "local stack on $BASE"

# ---------------------------------------------------------------------------
# Seed the orders the document's order_number examples name, so the examples
# phase reads, cancels, replays and reports on orders in several states.
#   mabang-test002   the spec sample as sent (pending, with findings)
#   mabang-test003   a TikTok order shipped and handed over: callback delivered
#   mabang-ebay-001  an eBay order shipped and handed over without the fee and
#                    measurements eBay needs: callback failed (replayable)

# call METHOD PATH KEY-HEADER [BODY]: prints the status; fails on anything but 2xx.
call() {
  local method=$1 path=$2 auth=$3 body=${4:-} status
  status="$(python3 "$ROOT/infra/local/http_request.py" call "$method" "$BASE$path" "$RUN_DIR/last.json" \
    -H "$auth" -H 'Content-Type: application/json' ${body:+--data-binary "$body"})"
  if [[ "$status" != 2* ]]; then
    log "seeding: $method $path answered $status: $(cat "$RUN_DIR/last.json")"
    return 1
  fi
}

# order NUMBER PLATFORM: the spec sample under another number and platform.
order() {
  "$PYTHON" - "$ROOT/tests/fixtures/spec-000-sample.json" "$1" "$2" <<'EOF'
import json, sys
order = json.load(open(sys.argv[1], encoding="utf-8"))
order["package"]["order_number"] = sys.argv[2]
order["platform_type"] = sys.argv[3]
order["platform_order_number"] = "po-" + sys.argv[2]
print(json.dumps(order, ensure_ascii=False))
EOF
}

# callback_status NUMBER
callback_status() {
  python3 "$ROOT/infra/local/http_request.py" call GET "$BASE/apicenter/api/order/$1" "$RUN_DIR/order.json" \
    -H "Authorization: Bearer $ERP_KEY" >/dev/null
  "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["data"]["callback"]["status"])' "$RUN_DIR/order.json"
}

ERP="Authorization: Bearer $ERP_KEY"
WMS="X-Api-Key: $WMS_KEY"
call POST /apicenter/api/order "$ERP" "@$ROOT/tests/fixtures/spec-000-sample.json"
# Event times must fall within the order's life: from a minute ago.
shipped_at="$(date -u -d '-60 seconds' +%Y-%m-%dT%H:%M:%SZ)"
handed_at="$(date -u -d '-30 seconds' +%Y-%m-%dT%H:%M:%SZ)"
for seed in mabang-test003:tiktok mabang-ebay-001:ebay; do
  number=${seed%%:*} platform=${seed#*:}
  call POST /apicenter/api/order "$ERP" "$(order "$number" "$platform")"
  call POST "/apicenter/api/order/$number/events" "$WMS" \
    '{"event_id":"seed-1","type":"shipped","occurred_at":"'"$shipped_at"'","tracking_number":"YT4567890123CN","logistic_provider_code":"jito"}'
  call POST "/apicenter/api/order/$number/events" "$WMS" \
    '{"event_id":"seed-2","type":"handed_over","occurred_at":"'"$handed_at"'"}'
done
# The dispatcher settles the callbacks in the background.
deadline=$((SECONDS + 30))
until [[ "$(callback_status mabang-test003)" == delivered && "$(callback_status mabang-ebay-001)" == failed ]]; do
  ((SECONDS < deadline)) || die "seeded callbacks did not settle: mabang-test003 $(callback_status mabang-test003), mabang-ebay-001 $(callback_status mabang-ebay-001)"
  sleep 0.5
done
log "seeded mabang-test002 (pending), mabang-test003 (callback delivered), mabang-ebay-001 (callback failed)"

# ---------------------------------------------------------------------------
TOTAL=0
FAILED=0
LAST_ANSWERS=""

# run NAME CHECKS ARGS...: one schemathesis run; counts the requests it sent.
run() {
  local name=$1 checks=$2 status=0
  shift 2
  log "run '$name'"
  # No example database: every run generates from the seed alone.
  "$SCHEMATHESIS" --config-file "$RUN_DIR/schemathesis.toml" run "$SPEC" --url "$BASE" \
    --checks "$checks" --seed "$SEED" --max-examples "$MAX_EXAMPLES" \
    --generation-database none --workers 1 --request-timeout 10 --no-color \
    --report junit,ndjson --report-dir "$RUN_DIR/$name" \
    "$@" || status=$?
  local summary cases
  summary="$("$PYTHON" - "$RUN_DIR/$name" <<'EOF'
import collections, glob, json, sys
# Every request schemathesis sent is one recorded interaction in the NDJSON events.
statuses = collections.Counter()
for path in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(path, encoding="utf-8"):
        for value in json.loads(line).values():
            if isinstance(value, dict) and "recorder" in value:
                for interaction in (value["recorder"].get("interactions") or {}).values():
                    status = (interaction.get("response") or {}).get("status_code", "none")
                    statuses[status] += 1
answers = ", ".join(f"{count}x{status}" for status, count in sorted(statuses.items(), key=str))
print(sum(statuses.values()), answers or "none")
EOF
)"
  cases=${summary%% *}
  log "run '$name': $cases requests (answers: ${summary#* }), exit status $status"
  LAST_ANSWERS=${summary#* }
  TOTAL=$((TOTAL + cases))
  ((status == 0)) || FAILED=$((FAILED + 1))
}

# The ERP's operations with the ERP key (as a bearer token), including the
# stateful phase that follows the document's links from a created order.
run erp "$KEYED_CHECKS" --include-tag orders -H "Authorization: Bearer $ERP_KEY"
# The warehouse's operation with the WMS key (as X-Api-Key; no generated
# Authorization header, which would rightly be refused beside it).
run wms "$KEYED_CHECKS" --include-tag warehouse -H "X-Api-Key: $WMS_KEY" \
  --generation-with-security-parameters false --phases examples,coverage,fuzzing
# The ERP's webhook endpoints with the ERP key. The stateful phase first, while
# the client has room for endpoints (10 at most): it follows the links from a
# created endpoint (read, change, rotate, replay, delete).
run webhooks-stateful "$KEYED_CHECKS" --include-tag webhooks -H "Authorization: Bearer $ERP_KEY" \
  --phases stateful
run webhooks "$KEYED_CHECKS" --include-tag webhooks -H "Authorization: Bearer $ERP_KEY" \
  --phases examples,coverage,fuzzing
# No key at all: every answer must be the documented 401.
run no-key "$CHECKS" --include-operation-id getOrder --generation-with-security-parameters false \
  --phases examples,coverage,fuzzing
if [[ ! "$LAST_ANSWERS" =~ ^[0-9]+x401$ ]]; then
  log "run 'no-key': requests without a key must all answer 401, got: $LAST_ANSWERS"
  FAILED=$((FAILED + 1))
fi

log "$TOTAL requests in 5 runs (seed $SEED, at most $MAX_EXAMPLES examples per operation and phase); $FAILED run(s) failed"
((FAILED == 0))
