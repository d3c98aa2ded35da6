#!/usr/bin/env bash
# CI step: the `cuda` feature compiles, lints clean and fails cleanly without a GPU.
#
# No GPU and no CUDA toolkit here: scripts/cuda-env.sh brings nvcc and the libraries from
# pinned wheels and a stub libcuda. Everything is built in the release profile, in its own
# target dir (target-cuda), so candle-kernels' nvcc work (most of the time) happens once for
# the build, clippy and the test.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh

t0=$SECONDS
phase_start=$SECONDS
phase() {
  local now=$SECONDS
  [ -z "${phase_name:-}" ] || printf '== cuda: %s took %d:%02d min\n' "$phase_name" $(((now - phase_start) / 60)) $(((now - phase_start) % 60))
  phase_name=$1
  phase_start=$now
  [ "$1" = "done" ] || echo "== cuda: $1"
}

phase "cargo build --release --features cuda"
nice -n 10 cargo build --release --locked --features cuda --bin lrlab

phase "cargo clippy --release --all-targets --features cuda"
nice -n 10 cargo clippy --release --all-targets --locked --features cuda -- -D warnings

# The stub driver answers CUDA_ERROR_NO_DEVICE; RUST_BACKTRACE=1 makes candle attach a
# backtrace to its errors, which must not reach the message.
export LD_LIBRARY_PATH="$CUDA_ROOT/lib:$CUDA_ROOT/run-stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUST_BACKTRACE=1

phase "cargo test --release --features cuda --lib device (stub driver)"
nice -n 10 cargo test --release --locked --features cuda --lib device

phase "the cuda binary without a GPU"
bin="$CARGO_TARGET_DIR/release/lrlab"
work=$(mktemp -d)
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cuda check failed: $*" >&2; exit 1; }

# A clean device error: non-zero exit, the device named, no panic, no backtrace.
clean_device_error() { # what, exit status, stderr file
  local what=$1 rc=$2 err=$3
  echo "-- $what: exit $rc, stderr:"
  sed 's/^/   | /' "$err"
  [ "$rc" -ne 0 ] || fail "$what exited 0"
  [ "$rc" -lt 100 ] || fail "$what ended with status $rc (a crash or a timeout)"
  grep -q 'cuda:0' "$err" || fail "$what: the error does not name cuda:0"
  ! grep -qiE 'panicked|stack backtrace|^ +[0-9]+: ' "$err" || fail "$what: a panic or a backtrace"
  [ "$(grep -c . "$err")" -le 5 ] || fail "$what: more than 5 lines on stderr"
}

"$bin" --version
rc=0
"$bin" train --device cuda:0 --schedule '{"kind":"constant","lr":0.1}' --epochs 1 \
  --train-limit 512 --test-limit 256 --out "$work/train" 2> "$work/train.err" || rc=$?
clean_device_error "lrlab train --device cuda:0" "$rc" "$work/train.err"

# The server checks its devices before it opens the database or listens. Should it ever
# start instead (a worker failing its jobs rather than the process), it must keep serving.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --device cuda:0 --bind "127.0.0.1:$port" --db "sqlite://$work/lrlab.db" \
  --artifacts-dir "$work/artifacts" --no-download 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 100); do
  kill -0 "$server" 2>/dev/null || break
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
if kill -0 "$server" 2>/dev/null; then
  health=$(curl -fsS "http://127.0.0.1:$port/healthz") || fail "serve --device cuda:0 runs but /healthz fails"
  echo "-- lrlab serve --device cuda:0: started and serves /healthz: $health"
  kill -TERM "$server"
  wait "$server" || true
else
  rc=0
  wait "$server" || rc=$?
  clean_device_error "lrlab serve --device cuda:0 (refused at start-up)" "$rc" "$work/serve.err"
fi
server=

phase "done"
printf '== cuda: all steps took %d:%02d min (shared 2-core machine)\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60))
