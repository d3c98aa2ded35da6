#!/usr/bin/env bash
# CI step: the `cuda` feature compiles, lints clean and fails cleanly without a GPU.
#
# No GPU and no CUDA toolkit here: scripts/cuda-env.sh brings nvcc and the libraries from
# pinned wheels and a stub libcuda. Everything is built in the `cuda-check` profile (nothing
# optimized: this binary only has to compile, lint clean and fail cleanly, and an optimized
# build of every dependency would double the step), in its own target dir (target-cuda), so
# candle-kernels' nvcc work (most of the time) happens once for the build, clippy and the test.
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

profile=cuda-check
phase "cargo build --profile $profile --features cuda"
nice -n 10 cargo build --profile "$profile" --locked --features cuda --bin lrlab

phase "cargo clippy --profile $profile --all-targets --features cuda"
nice -n 10 cargo clippy --profile "$profile" --all-targets --locked --features cuda -- -D warnings

# The stub driver answers CUDA_ERROR_NO_DEVICE; RUST_BACKTRACE=1 makes candle attach a
# backtrace to its errors, which must not reach the message.
export LD_LIBRARY_PATH="$CUDA_ROOT/lib:$CUDA_ROOT/run-stub${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export RUST_BACKTRACE=1

phase "the cuda binary without a GPU"
bin="$CARGO_TARGET_DIR/$profile/lrlab"
work=$(mktemp -d)
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "cuda check failed: $*" >&2; exit 1; }

# A clean device error: non-zero exit, the device named, no panic, no backtrace.
clean_device_error() { # what, exit status, stderr file, device
  local what=$1 rc=$2 err=$3 device=${4:-cuda:0}
  echo "-- $what: exit $rc, stderr:"
  sed 's/^/   | /' "$err"
  [ "$rc" -ne 0 ] || fail "$what exited 0"
  [ "$rc" -lt 100 ] || fail "$what ended with status $rc (a crash or a timeout)"
  grep -q "$device" "$err" || fail "$what: the error does not name $device"
  ! grep -qiE 'panicked|stack backtrace|^ +[0-9]+: ' "$err" || fail "$what: a panic or a backtrace"
  [ "$(grep -c . "$err")" -le 5 ] || fail "$what: more than 5 lines on stderr"
}

"$bin" --version
# The device path of the cuda build, with the built binary (a `cargo test --features cuda`
# would recompile candle and sqlx with the dev-dependencies' features: ~11 more minutes).
for device in cuda:0 cuda:99; do
  rc=0
  "$bin" train --device "$device" --schedule '{"kind":"constant","lr":0.1}' --epochs 1 \
    --train-limit 512 --test-limit 256 --out "$work/train" 2> "$work/train.err" || rc=$?
  clean_device_error "lrlab train --device $device" "$rc" "$work/train.err" "$device"
done

# The server keeps serving without its GPU: the worker of a device that cannot be opened
# logs why and takes no jobs (they stay queued), /readyz says why it is not ready.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --device cuda:0 --bind "127.0.0.1:$port" --db "sqlite://$work/lrlab.db" \
  --artifacts-dir "$work/artifacts" --no-download 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 100); do
  kill -0 "$server" 2>/dev/null || break
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null || fail "serve --device cuda:0 exited: $(cat "$work/serve.err")"
health=$(curl -fsS "http://127.0.0.1:$port/healthz") || fail "serve --device cuda:0 runs but /healthz fails"
echo "-- lrlab serve --device cuda:0: serves /healthz: $health"
ready=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
[ "$ready" = 503 ] || fail "/readyz answered $ready without a usable device"
curl -sS "http://127.0.0.1:$port/readyz" | grep -q 'cuda:0' || fail "/readyz does not name cuda:0"
grep -q 'cuda:0' "$work/serve.err" || fail "the log does not say why cuda:0 takes no jobs"
! grep -qiE 'panicked|stack backtrace' "$work/serve.err" || fail "serve: a panic or a backtrace"
kill -TERM "$server"
wait "$server" || true
server=

phase "done"
printf '== cuda: all steps took %d:%02d min (shared 2-core machine)\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60))
