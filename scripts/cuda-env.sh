#!/usr/bin/env bash
# The environment for building lrlab with `--features cuda` on a machine with no GPU and no
# CUDA toolkit: nvcc, headers and libraries come from pinned PyPI wheels (CUDA 13.4), laid out
# as a CUDA root, plus a link-time stub libcuda generated from cudarc's declarations (the
# driver is no wheel; at run time the real driver is used). Idempotent: a second run only
# checks what is there.
#
#   source scripts/cuda-env.sh                  # set up, then export the variables into this shell
#   scripts/cuda-env.sh cargo build --release --features cuda --bin lrlab   # run one command in it
#   eval "$(scripts/cuda-env.sh)"               # no command: print the exports
#
# Where things go (override with the variables):
#   LRLAB_CACHE_DIR  /var/cache/lrlab if writable, else ~/.cache/lrlab
#   CUDA_VENV        $LRLAB_CACHE_DIR/cuda-venv   the wheels (~1.2 GB)
#   CUDA_ROOT        $LRLAB_CACHE_DIR/cuda-root   symlinks into the wheels + the stub driver
#   CARGO_TARGET_DIR target-cuda in the checkout (gitignored), so the CUDA build never
#                    invalidates the CPU one in target/
#   CUDA_COMPUTE_CAP 90 (H100/H200: candle's kernels are compiled to sm_90a PTX, which runs
#                    on that capability only). For another GPU set its capability before
#                    building, e.g. 80 for A100, 89 for L4/L40/RTX 40xx, 86 for RTX 30xx/A10,
#                    100 for B200, 120 for RTX 50xx; `nvidia-smi --query-gpu=compute_cap
#                    --format=csv,noheader` prints it (as 9.0 -> write 90). Changing it
#                    rebuilds candle-kernels.
#
# Run time: the binary links libcuda.so.1, libcudart.so.13, libcublas.so.13(+Lt) and
# libcurand.so.10 dynamically (candle builds cudarc with `dynamic-linking`), so even
# `lrlab --help` needs them on the loader path. On a GPU host that has a driver for
# CUDA >= 13.4 but no toolkit: LD_LIBRARY_PATH=$CUDA_ROOT/lib. Here, with no driver, add
# $CUDA_ROOT/run-stub, whose libcuda.so.1 answers every call with CUDA_ERROR_NO_DEVICE:
#   LD_LIBRARY_PATH=$CUDA_ROOT/lib:$CUDA_ROOT/run-stub target-cuda/release/lrlab train --device cuda:0
#
# Needs python3 (with venv), gcc and cargo. Measured on a shared 2-core machine: the wheels
# ~20 s; the release build of lrlab ~12.5 min, most of it nvcc compiling candle-kernels.

# The pins: cudarc 0.19 knows CUDA <= 13.4 (13.5 would need CUDARC_CUDA_VERSION=13040), and
# the -cu12 nvcc wheels ship ptxas only. Dockerfile.cuda's base image follows these.
LRLAB_CUDA_WHEELS="nvidia-cuda-nvcc==13.4.92 nvidia-nvvm==13.4.92 nvidia-cuda-crt==13.4.92
nvidia-cuda-runtime==13.4.92 nvidia-cuda-nvrtc==13.4.92 nvidia-cuda-cccl==13.3.5.0.6
nvidia-curand==10.4.5.25 nvidia-cublas==13.10.0.20"

_lrlab_cuda_paths() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -z "${LRLAB_CACHE_DIR:-}" ]; then
    if mkdir -p /var/cache/lrlab 2>/dev/null && [ -w /var/cache/lrlab ]; then
      LRLAB_CACHE_DIR=/var/cache/lrlab
    else
      LRLAB_CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/lrlab
    fi
  fi
  CUDA_VENV=${CUDA_VENV:-$LRLAB_CACHE_DIR/cuda-venv}
  CUDA_ROOT=${CUDA_ROOT:-$LRLAB_CACHE_DIR/cuda-root}
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target-cuda}
  CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
  LRLAB_CHECKOUT=$here
}

# Runs in a subshell with `set -euo pipefail`, so sourcing this file never changes the
# options of the caller's shell.
_lrlab_cuda_setup() (
  set -euo pipefail
  log() { printf '[cuda-env] %s\n' "$*" >&2; }

  # 1. The wheels, once per pin set.
  local stamp="$CUDA_VENV/.lrlab-pins"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$LRLAB_CUDA_WHEELS" ]; then
    log "installing the CUDA 13.4 wheels into $CUDA_VENV"
    mkdir -p "$(dirname "$CUDA_VENV")"
    [ -x "$CUDA_VENV/bin/pip" ] || python3 -m venv "$CUDA_VENV"
    # shellcheck disable=SC2086 # the pin list is split on purpose
    "$CUDA_VENV/bin/pip" install -q --disable-pip-version-check $LRLAB_CUDA_WHEELS
    printf '%s' "$LRLAB_CUDA_WHEELS" > "$stamp"
  fi
  local cu13
  cu13=$("$CUDA_VENV/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')

  # 2. A CUDA root: the wheels' bin/include/nvvm as they are, and lib/ with the unversioned
  #    .so names the linker looks for.
  mkdir -p "$CUDA_ROOT/lib/stubs" "$CUDA_ROOT/run-stub"
  local d f b
  for d in bin include nvvm; do ln -sfn "$cu13/$d" "$CUDA_ROOT/$d"; done
  for f in "$cu13"/lib/*.so.*; do
    b=$(basename "$f")
    ln -sfn "$f" "$CUDA_ROOT/lib/$b"
    ln -sfn "$f" "$CUDA_ROOT/lib/${b%%.so.*}.so"
  done
  ln -sfn "$cu13/lib/libcudart_static.a" "$CUDA_ROOT/lib/libcudart_static.a"

  # 3. The stub driver: every entry point the locked cudarc declares, returning
  #    CUDA_ERROR_NO_DEVICE (100), with soname libcuda.so.1 so that the binary loads the real
  #    driver on a GPU host. Regenerated when cudarc's version changes.
  local lock="$LRLAB_CHECKOUT/Cargo.lock" ver sys srcs
  ver=$(awk '/^name = "cudarc"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$lock")
  [ -n "$ver" ] || { log "no cudarc in $lock"; exit 1; }
  if [ ! -f "$CUDA_ROOT/lib/stubs/libcuda.so" ] || [ "$(cat "$CUDA_ROOT/lib/stubs/cudarc-version" 2>/dev/null)" != "$ver" ]; then
    log "generating the link-time stub libcuda from cudarc $ver"
    (cd "$LRLAB_CHECKOUT" && cargo fetch --locked -q)
    srcs=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$ver"/src/driver/sys/mod.rs)
    sys=${srcs[0]}
    [ -f "$sys" ] || { log "cudarc $ver's sources not found after cargo fetch"; exit 1; }
    {
      echo '/* generated link-time stub for libcuda.so.1: no device, ever */'
      echo 'static const char msg[] = "no CUDA driver (link-time stub libcuda)";'
      echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = msg; return 0; }'
      echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_NO_DEVICE"; return 0; }'
      grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+\(' "$sys" | sed -E 's/^pub unsafe fn (cu[A-Za-z0-9_]+)\(/\1/' \
        | sort -u | grep -vxE 'culib|cuGetErrorString|cuGetErrorName' | sed 's/.*/int &(void) { return 100; }/'
    } > "$CUDA_ROOT/lib/stubs/libcuda_stub.c"
    gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$CUDA_ROOT/lib/stubs/libcuda.so" \
      "$CUDA_ROOT/lib/stubs/libcuda_stub.c"
    printf '%s' "$ver" > "$CUDA_ROOT/lib/stubs/cudarc-version"
  fi
  # Only for running without a GPU: the stub under the name the loader looks for.
  ln -sfn "$CUDA_ROOT/lib/stubs/libcuda.so" "$CUDA_ROOT/run-stub/libcuda.so.1"
)

_lrlab_cuda_paths
if _lrlab_cuda_setup; then
  # nvcc on PATH (candle-kernels' build, cudarc's version probe), CUDA_ROOT for cudarc's link
  # search, and an explicit compute capability (no nvidia-smi to ask).
  export LRLAB_CACHE_DIR CUDA_VENV CUDA_ROOT CARGO_TARGET_DIR CUDA_COMPUTE_CAP
  export CUDA_PATH="$CUDA_ROOT" CUDA_HOME="$CUDA_ROOT"
  case ":$PATH:" in *":$CUDA_ROOT/bin:"*) ;; *) export PATH="$CUDA_ROOT/bin:$PATH" ;; esac
  unset -f _lrlab_cuda_paths _lrlab_cuda_setup; unset LRLAB_CHECKOUT
  if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    : # sourced: the exports above are the result
  elif [ $# -gt 0 ]; then
    exec "$@"
  else
    for v in LRLAB_CACHE_DIR CUDA_VENV CUDA_ROOT CUDA_PATH CUDA_HOME CARGO_TARGET_DIR CUDA_COMPUTE_CAP PATH; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
  fi
else
  echo "[cuda-env] setup failed" >&2
  unset -f _lrlab_cuda_paths _lrlab_cuda_setup; unset LRLAB_CHECKOUT
  # shellcheck disable=SC2317 # return works when sourced, exit when run
  return 1 2>/dev/null || exit 1
fi
