#!/usr/bin/env bash
# CI step: build docker/Dockerfile unchanged (podman, no Docker engine, no registry), run it,
# and exercise it as a user would: healthcheck, a job, `podman stop` during a job and its
# resumption on the same volume, then docker/compose.yaml with podman-compose.
set -euo pipefail
cd "$(dirname "$0")/.."
oci=docker/ci-oci.sh
tag=localhost/lrlab:ci
volume=lrlab-ci-data
name=lrlab-ci
project=lrlab-ci
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
base=http://127.0.0.1:$port

t0=$SECONDS
phase_start=$SECONDS
phase() {
  local now=$SECONDS
  [ -z "${phase_name:-}" ] || printf '== containers: %s took %d:%02d min\n' "$phase_name" $(((now - phase_start) / 60)) $(((now - phase_start) % 60))
  phase_name=$1
  phase_start=$now
  [ "$1" = "done" ] || echo "== containers: $1"
}
fail() {
  echo "containers check failed: $*" >&2
  podman logs --tail 40 "$name" 2>/dev/null | sed 's/^/   | /' >&2 || true
  exit 1
}
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  if [ -n "${compose_up:-}" ]; then
    LRLAB_PORT=$port podman-compose -p "$project" -f docker/compose.yaml down -v >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# One field of a JSON document on stdin, by a Python expression on `d`.
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# The image starts with tokens on (LRLAB_AUTH=tokens); this admin token is its first.
token=lrlab-ci-$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export LRLAB_BOOTSTRAP_TOKEN=$token
auth=(-H "authorization: Bearer $token")
job_field() { curl -fsS "${auth[@]}" "$base/v1/jobs/$1" | json "$2"; }
submit() { curl -fsS "${auth[@]}" -X POST "$base/v1/jobs" -H 'content-type: application/json' -d "$1" | json 'd["id"]'; }

# Healthy per the image's HEALTHCHECK. Podman runs healthchecks from systemd timers, which CI
# lacks (hence its harmless "unable to get systemd connection" errors on run and rm): run it
# by hand until it passes, then read the state podman recorded.
wait_healthy() {
  local i
  for i in $(seq 1 60); do
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      local state
      state=$(podman inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null) \
        || state=$(podman inspect --format '{{.State.Healthcheck.Status}}' "$name")
      [ "$state" = healthy ] || fail "healthcheck passed but podman says $state"
      echo "-- $name healthy after ${i} tries: $(curl -fsS "$base/healthz")"
      return 0
    fi
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || fail "the container exited"
    sleep 1
  done
  fail "not healthy within 60 s"
}

# Waits until the job's status is one of $2 (|-separated), at most $3 seconds.
wait_status() {
  local id=$1 want=$2 limit=$3 status i
  for i in $(seq 1 $((limit * 2))); do
    status=$(job_field "$id" 'd["status"]')
    case "|$want|" in *"|$status|"*) echo "-- job $id is $status"; return 0 ;; esac
    case $status in failed | canceled | succeeded) fail "job $id ended $status: $(job_field "$id" 'd["error"]')" ;; esac
    sleep 0.5
  done
  fail "job $id still $status after $limit s"
}

start() {
  $oci run "$tag" --name "$name" -p "127.0.0.1:$port:8080" -v "$volume:/var/lib/lrlab" -e LRLAB_BOOTSTRAP_TOKEN >/dev/null
  wait_healthy
}

# A copy of the database on the volume (with its WAL, if any), read while no container runs.
db_query() {
  local dir copy
  dir=$(podman volume inspect --format '{{.Mountpoint}}' "$volume")
  copy=$(mktemp -d)
  cp "$dir"/lrlab.db* "$copy/"
  python3 - "$copy/lrlab.db" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for row in con.execute(sys.argv[2]):
    print(*row)
EOF
  rm -rf "$copy"
}

phase "prepare (podman, base images)"
$oci prepare >/dev/null

phase "build docker/Dockerfile"
$oci build "$tag" . docker/Dockerfile
podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "-- image size %.0f MB\n", $1 / 1e6}'

phase "start, healthcheck"
podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true
podman volume create "$volume" >/dev/null
start
[ "$(podman exec "$name" id -u)" != 0 ] || fail "lrlab runs as root"
[ "$(podman exec "$name" cat /proc/1/comm)" = tini ] || fail "PID 1 is not tini"
echo "-- runs as $(podman exec "$name" id -un) (uid $(podman exec "$name" id -u)) under tini"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/jobs")
[ "$code" = 401 ] || fail "GET /v1/jobs without a token answered $code, not 401"
echo "-- tokens on: /v1/jobs without a token is 401"

phase "a 1-epoch job"
job1=$(submit '{"epochs":1,"train_limit":2000,"test_limit":500,"schedule":{"kind":"constant","lr":0.1}}')
wait_status "$job1" succeeded 300
echo "-- job $job1: $(job_field "$job1" '"test_acc %.3f after %d epoch(s)" % (d["latest_metrics"]["test_acc"], d["progress"]["epoch"])')"

phase "podman stop during a job, resume on the same volume"
job2=$(submit '{"epochs":30,"train_limit":20000,"test_limit":1000,"schedule":{"kind":"constant","lr":0.1}}')
wait_status "$job2" running 120
for _ in $(seq 1 240); do
  [ "$(job_field "$job2" 'd["progress"]["epoch"]')" -ge 1 ] && break
  sleep 0.5
done
stored=$(job_field "$job2" 'd["progress"]["epoch"]')
[ "$stored" -ge 1 ] || fail "job $job2 stored no epoch in 120 s"
[ "$stored" -lt 30 ] || fail "job $job2 finished before the stop; make it longer"
podman stop -t 40 "$name" >/dev/null
echo "-- stopped with job $job2 at epoch $stored; exit code $(podman inspect --format '{{.State.ExitCode}}' "$name")"
podman logs --tail 5 "$name" 2>&1 | sed 's/^/   | /'
read -r status attempts kept < <(db_query "SELECT status, attempts, (SELECT count(*) FROM epoch_metrics WHERE job_id = $job2) FROM jobs WHERE id = $job2")
echo "-- in the database: job $job2 $status, attempts $attempts, $kept epochs stored"
[ "$status" = queued ] || fail "job $job2 is $status after podman stop, not queued"
[ "$kept" -ge 1 ] || fail "no epoch of job $job2 kept"
# The first epoch's row as stored: a resumed job keeps it; a job started over rewrites it
# (its training time at least differs).
before=$(db_query "SELECT train_loss, test_acc, seconds FROM epoch_metrics WHERE job_id = $job2 AND epoch = 1")
podman rm "$name" >/dev/null
start
wait_status "$job2" succeeded 600
series=$(curl -fsS "${auth[@]}" "$base/v1/jobs/$job2/metrics?format=series")
after=$(json '" ".join(str(d[k][0]) for k in ("train_loss", "test_acc", "seconds"))' <<< "$series")
epochs=$(json '",".join(map(str, d["epoch"]))' <<< "$series")
attempts=$(job_field "$job2" 'd["attempts"]')
echo "-- job $job2 succeeded after $attempts attempts; epoch 1 before the stop: $before; after: $after"
[ "$attempts" = 2 ] || fail "job $job2 has $attempts attempts, expected 2"
[ "$epochs" = "$(seq -s, 1 30)" ] || fail "job $job2's epochs are $epochs"
python3 -c 'import sys; a, b = (list(map(float, s.split())) for s in sys.argv[1:3]); sys.exit(0 if a == b else 1)' "$before" "$after" \
  || fail "epoch 1 was trained again: the job did not resume from its checkpoint"
podman stop -t 40 "$name" >/dev/null
podman rm "$name" >/dev/null

phase "podman-compose -f docker/compose.yaml"
podman tag "$tag" localhost/lrlab:latest
compose_up=1
LRLAB_PORT=$port podman-compose -p "$project" -f docker/compose.yaml up -d >/dev/null
for _ in $(seq 1 60); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 1
done
health=$(curl -fsS "$base/healthz") || fail "compose: no /healthz on port $port"
echo "-- compose: /healthz $health"
curl -fsS "${auth[@]}" "$base/v1/jobs" >/dev/null || fail "compose: the bootstrap token is not accepted"
LRLAB_PORT=$port podman-compose -p "$project" -f docker/compose.yaml down -v >/dev/null
compose_up=

phase "done"
printf '== containers: all phases took %d:%02d min (shared 2-core machine)\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60))
