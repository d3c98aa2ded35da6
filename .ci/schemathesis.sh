#!/usr/bin/env bash
# Checks a live lrlab against openapi.yaml with schemathesis, twice: with its default
# checks (no 5xx), then with all of them (responses conform to the schema, status codes
# and content types are documented, schema-valid requests are accepted and invalid ones
# refused, ...). The server runs the debug build over a small generated data set, so the
# jobs schemathesis submits train in moments. About 4 minutes on 2 cores after the build.
#
#   .ci/schemathesis.sh               # both runs
#   ST_MAX_TIME=30 .ci/schemathesis.sh  # shorter
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-target}
VENV=${LRLAB_CI_VENV:-$target/ci-venv}
# Seconds per run (each run also stops once every operation had its examples).
MAX_TIME=${ST_MAX_TIME:-100}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-60}

if ! "$VENV/bin/st" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# What `cargo test` builds (the binary, the examples), with its features: a `cargo build` of
# the binary alone leaves out the dev-dependencies' features and would compile many
# dependencies a second time.
cargo test --locked --quiet --no-run
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Tiny splits: a job schemathesis submits with 1000 epochs still ends in seconds.
"$target/debug/examples/gen-data" "$work/data" 128 64 >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
LRLAB_LOG=warn "$target/debug/lrlab" serve --bind "127.0.0.1:$port" \
  --db "sqlite://$work/lrlab.db" --data-dir "$work/data" \
  --artifacts-dir "$work/artifacts" --no-download 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

# Two finished jobs, so ids 1 and 2 have metrics, updates, weights and charts.
for lr in 0.1 0.05; do
  curl -fsS -X POST "$base/v1/jobs" -H 'content-type: application/json' \
    -d "{\"epochs\": 2, \"batch_size\": 32, \"schedule\": {\"kind\": \"constant\", \"lr\": $lr}}" >/dev/null
done
for _ in $(seq 1 300); do
  [ "$(curl -fsS "$base/v1/jobs?status=queued,running" | python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])')" = 0 ] && break
  sleep 0.2
done

# The event stream of a running job lasts as long as the job: it is covered by the Rust
# tests (tests/it/job_events.rs), not fuzzed here.
# One worker: hypothesis under CPython 3.11 can fail compiling in two threads at once.
common=(
  openapi.yaml --url "$base"
  --exclude-path '/v1/jobs/{id}/events'
  --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME"
  --request-timeout 20 --workers 1 --seed 20260101
  --suppress-health-check too_slow,filter_too_much,data_too_large
)

# Hypothesis keeps its own files (Unicode tables, constants) beside schemathesis's, in target/.
export HYPOTHESIS_STORAGE_DIRECTORY=$target/schemathesis/hypothesis
status=0
echo "== schemathesis $SCHEMATHESIS_VERSION, default checks"
st=("$VENV/bin/st" --config-file .ci/schemathesis.toml run)
"${st[@]}" "${common[@]}" || status=1
echo "== schemathesis $SCHEMATHESIS_VERSION, all checks"
"${st[@]}" "${common[@]}" --checks all || status=1

if [ "$status" != 0 ]; then
  echo "schemathesis found problems; the server's log:"
  tail -n 50 "$work/server.log"
fi
exit "$status"
