#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (CI has none and never runs it):
#   1. builds lrlab with `--features cuda` (scripts/cuda-env.sh, unless nvcc is installed);
#   2. trains the same spec and seed on cuda:0 and on the CPU with the real Fashion-MNIST;
#   3. compares the two metrics.csv: epoch 1's losses within float rounding, the last
#      epoch's test accuracy within ±0.01;
#   4. prints lrlab's training examples/s on the GPU, and PyTorch's on the same GPU
#      (../shared/peers/pytorch_lenet.py) with the ratio, where a venv with torch exists.
# Exit status: 0 all agree, 1 a mismatch or a failed run, 2 bad usage.
#
#   scripts/gpu-check.sh
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TRAIN_LIMIT=2000 GPU_CHECK_TEST_LIMIT=500 scripts/gpu-check.sh
#       (two CPU runs: tests this script's comparison without a GPU)
#
# Environment:
#   GPU_CHECK_DEVICE        device under test (cuda:0); `cpu` skips the CUDA build
#   GPU_CHECK_EPOCHS        epochs (3)
#   GPU_CHECK_LR            the constant learning rate (0.3)
#   GPU_CHECK_SEED          seed of both runs (0)
#   GPU_CHECK_TRAIN_LIMIT   / GPU_CHECK_TEST_LIMIT: fewer examples (default: all)
#   GPU_CHECK_LOSS_RTOL     epoch-1 loss tolerance, relative (1e-3)
#   GPU_CHECK_ACC_TOL       last-epoch test accuracy tolerance, absolute (0.01)
#   GPU_CHECK_OUT           where the runs go (a new temp dir)
#   LRLAB_BIN               a built lrlab to use instead of building one
#   LRLAB_DATA_DIR          Fashion-MNIST (default: lrlab's search, /usr/share/datasets/...)
#   CUDA_COMPUTE_CAP        the GPU's compute capability (default: asked of nvidia-smi)
#   (a system toolkit newer than CUDA 13.4 also needs CUDARC_CUDA_VERSION=13040)
#   PEER_VENV               venv with torch (/tmp/lrlab-peer-venv; ../shared/peers/setup.sh
#                           makes one); PEER_SCRIPT the peer (../shared/peers/pytorch_lenet.py)
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD

device=${GPU_CHECK_DEVICE:-cuda:0}
epochs=${GPU_CHECK_EPOCHS:-3}
lr=${GPU_CHECK_LR:-0.3}
seed=${GPU_CHECK_SEED:-0}
loss_rtol=${GPU_CHECK_LOSS_RTOL:-1e-3}
acc_tol=${GPU_CHECK_ACC_TOL:-0.01}
out=${GPU_CHECK_OUT:-$(mktemp -d /tmp/lrlab-gpu-check.XXXXXX)}
peer_venv=${PEER_VENV:-/tmp/lrlab-peer-venv}
peer_script=${PEER_SCRIPT:-$checkout/../shared/peers/pytorch_lenet.py}
log() { printf '[gpu-check] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ "$epochs" -ge 1 ] 2>/dev/null || { log "GPU_CHECK_EPOCHS must be an integer >= 1"; exit 2; }
case $device in
  cpu | cuda | cuda:[0-9]*) ;;
  *) log "GPU_CHECK_DEVICE must be cuda:N (or cpu to test this script)"; exit 2 ;;
esac
mkdir -p "$out"
log "runs go to $out"

# 1. The binary. Both runs use the same one: a CUDA build trains on the CPU as well.
if [ -n "${LRLAB_BIN:-}" ]; then
  bin=$LRLAB_BIN
elif [ "$device" = cpu ]; then
  nice -n 10 cargo build --release --locked --bin lrlab
  bin=$checkout/target/release/lrlab
else
  if [ -z "${CUDA_COMPUTE_CAP:-}" ] && command -v nvidia-smi >/dev/null; then
    CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
    export CUDA_COMPUTE_CAP
  fi
  if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    # A system toolkit (cudarc finds it through CUDA_ROOT or /usr/local/cuda); its
    # libraries are usually known to ld.so already, lib64 covers a tarball install.
    export PATH=${CUDA_ROOT:-/usr/local/cuda}/bin:$PATH
    export LD_LIBRARY_PATH=${CUDA_ROOT:-/usr/local/cuda}/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$checkout/target-cuda}
    log "building with the system CUDA toolkit ($(nvcc --version | tail -1)), compute capability ${CUDA_COMPUTE_CAP:-from nvidia-smi}"
  else
    log "no CUDA toolkit: the wheels of scripts/cuda-env.sh, compute capability ${CUDA_COMPUTE_CAP:-90}"
    # shellcheck source=scripts/cuda-env.sh
    source scripts/cuda-env.sh
    # The driver's libcuda.so.1 comes from the system; the toolkit's libraries from the wheels.
    export LD_LIBRARY_PATH=$CUDA_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  cargo build --release --locked --features cuda --bin lrlab
  bin=$CARGO_TARGET_DIR/release/lrlab
fi
"$bin" --version >/dev/null || die "$bin does not start (for a CUDA build: are libcuda.so.1, libcudart.so.13, libcublas.so.13 and libcurand.so.10 on the loader path?)"

# 2. The two runs: the device under test, then the CPU reference.
train() { # device, directory
  local args=(train --schedule "{\"kind\":\"constant\",\"lr\":$lr}" --epochs "$epochs" --seed "$seed"
    --device "$1" --out "$2" --restart)
  [ -z "${GPU_CHECK_TRAIN_LIMIT:-}" ] || args+=(--train-limit "$GPU_CHECK_TRAIN_LIMIT")
  [ -z "${GPU_CHECK_TEST_LIMIT:-}" ] || args+=(--test-limit "$GPU_CHECK_TEST_LIMIT")
  log "lrlab ${args[*]}"
  "$bin" "${args[@]}" < /dev/null || die "lrlab train on $1 failed"
}
train "$device" "$out/device"
train cpu "$out/cpu"

# 3 and 4. Compare by column name (the column order may change), report the speed.
# The peer reads the data where lrlab found it (lrlab may have downloaded it to ./data).
if [ -z "${LRLAB_DATA_DIR:-}" ] && [ ! -d /usr/share/datasets/fashion-mnist ] && [ -d data/fashion-mnist ]; then
  export LRLAB_DATA_DIR=$checkout/data/fashion-mnist
fi
peer_python=
if [ "$device" != cpu ] && [ -x "$peer_venv/bin/python" ] && [ -f "$peer_script" ] \
  && "$peer_venv/bin/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  peer_python=$peer_venv/bin/python
  log "PyTorch peer on $device: $peer_script"
  "$peer_python" "$peer_script" --device "$device" --schedule fixed --lr "$lr" --epochs "$epochs" \
    --seed "$seed" > "$out/pytorch.log" || die "the PyTorch peer failed (see $out/pytorch.log)"
elif [ "$device" != cpu ]; then
  log "no PyTorch with CUDA in $peer_venv (make one with ../shared/peers/setup.sh, or set PEER_VENV): no peer figures"
fi

python3 - "$device" "$out/device/metrics.csv" "$out/cpu/metrics.csv" "$epochs" "$loss_rtol" "$acc_tol" "${peer_python:+$out/pytorch.log}" <<'EOF'
import csv, json, sys

device, dev_csv, cpu_csv, epochs, loss_rtol, acc_tol, peer_log = sys.argv[1:8]
epochs, loss_rtol, acc_tol = int(epochs), float(loss_rtol), float(acc_tol)
NEEDED = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "examples_per_sec")

def rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"[gpu-check] FAIL: {path} lacks the columns {missing}")
        return [{k: float(v) for k, v in r.items() if k in NEEDED} for r in reader]

dev, cpu = rows(dev_csv), rows(cpu_csv)
failures = []
for name, got in (("device", dev), ("cpu", cpu)):
    if [int(r["epoch"]) for r in got] != list(range(1, epochs + 1)):
        failures.append(f"{name} run has epochs {[int(r['epoch']) for r in got]}, expected 1..{epochs}")
if failures:
    sys.exit("\n".join(f"[gpu-check] FAIL: {f}" for f in failures))

# Row labels: the device and the CPU, or the two CPU runs when testing this script.
labels = (device, "cpu") if device != "cpu" else ("cpu#1", "cpu#2")
print(f"{'epoch':>5} {'run':>6} {'train_loss':>10} {'train_acc':>9} {'test_loss':>9} {'test_acc':>8} {'examples/s':>11}")
for d, c in zip(dev, cpu):
    for label, r in zip(labels, (d, c)):
        print(f"{int(r['epoch']):>5} {label:>6} {r['train_loss']:>10.5f} {r['train_acc']:>9.4f} "
              f"{r['test_loss']:>9.5f} {r['test_acc']:>8.4f} {r['examples_per_sec']:>11,.0f}")

def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)

for col in ("train_loss", "test_loss"):
    e = rel(dev[0][col], cpu[0][col])
    verdict = "ok" if e <= loss_rtol else "MISMATCH"
    print(f"epoch 1 {col}: {labels[0]} {dev[0][col]:.6f} vs {labels[1]} {cpu[0][col]:.6f}, relative {e:.2e} (<= {loss_rtol:g}) {verdict}")
    if e > loss_rtol:
        failures.append(f"epoch 1 {col} differs by {e:.2e} relative")
d_acc, c_acc = dev[-1]["test_acc"], cpu[-1]["test_acc"]
verdict = "ok" if abs(d_acc - c_acc) <= acc_tol else "MISMATCH"
print(f"epoch {epochs} test_acc: {labels[0]} {d_acc:.4f} vs {labels[1]} {c_acc:.4f}, difference {d_acc - c_acc:+.4f} (±{acc_tol:g}) {verdict}")
if abs(d_acc - c_acc) > acc_tol:
    failures.append(f"epoch {epochs} test_acc differs by {d_acc - c_acc:+.4f}")

def steady(values):
    """Mean over the epochs after the first (which loads kernels and warms up) if there are any."""
    values = values[1:] if len(values) > 1 else values
    return sum(values) / len(values)

lrlab_speed = steady([r["examples_per_sec"] for r in dev])
print(f"lrlab on {device}: {lrlab_speed:,.0f} training examples/s (mean of epochs {'2' if epochs > 1 else '1'}..{epochs})")
if peer_log:
    with open(peer_log) as f:
        recs = [json.loads(line[5:]) for line in f if line.startswith("JSON ")]
    if len(recs) != epochs:
        failures.append(f"the PyTorch peer printed {len(recs)} epochs, expected {epochs}")
    else:
        torch_speed = steady([r["ex_per_s"] for r in recs])
        print(f"PyTorch on {device}: {torch_speed:,.0f} training examples/s (same rule); "
              f"test acc after epoch {epochs}: {recs[-1].get('test_acc', float('nan')):.4f}")
        print(f"ratio lrlab / PyTorch: {lrlab_speed / torch_speed:.2f}x")

if failures:
    sys.exit("\n".join(f"[gpu-check] FAIL: {f}" for f in failures))
print("[gpu-check] OK: the runs agree")
EOF
