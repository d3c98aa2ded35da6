#!/bin/bash
# ci-oci.sh: build and run an unchanged Dockerfile on a Debian 12 machine with no
# Docker engine and no container registry, using Debian's podman/buildah.
#
#   ci-oci.sh prepare              # install tools, configure, make the base images (idempotent)
#   ci-oci.sh build  TAG [DIR] [DOCKERFILE]   # podman build --pull=never, Docker image format
#   ci-oci.sh run    TAG [podman-run args...] # detached, prints the container id
#
# The base images are made locally (mmdebstrap, and the host's Rust toolchain for the rust
# image) under the tags that docker/Dockerfile names, so the Dockerfile is built unchanged.
#
# Env: RUST_VERSION (1.95.0), RUST_TAG (docker.io/library/rust:1.95-bookworm),
#      SUITE (bookworm), BASE_TAG (docker.io/library/debian:bookworm-slim), NO_RUST=1 to skip.
set -euo pipefail
SUITE=${SUITE:-bookworm}
BASE_TAG=${BASE_TAG:-docker.io/library/debian:${SUITE}-slim}
RUST_VERSION=${RUST_VERSION:-1.95.0}
RUST_TAG=${RUST_TAG:-docker.io/library/rust:${RUST_VERSION%.*}-${SUITE}}
log() { printf '[ci-oci %(%T)T] %s\n' -1 "$*" >&2; }

install_tools() {
  command -v podman >/dev/null && command -v buildah >/dev/null && command -v mmdebstrap >/dev/null \
    && command -v runc >/dev/null && command -v podman-compose >/dev/null && return 0
  log "apt-get install podman buildah mmdebstrap runc podman-compose"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah mmdebstrap runc \
    fuse-overlayfs slirp4netns uidmap podman-compose >/dev/null
}

configure() {
  # 1. These machines lack CAP_SYS_RESOURCE (hard nofile 20000) and podman itself lowers
  #    its hard RLIMIT_NPROC to 32768, so podman's default ulimits (1048576) fail with
  #    "setrlimit RLIMIT_NOFILE/NPROC: Operation not permitted".
  # 2. crun 1.8 refuses this kernel's cgroup v1+v2 hybrid ("cgroups in hybrid mode not
  #    supported"); runc works.
  local nofile; nofile=$(ulimit -Hn)
  mkdir -p /etc/containers
  cat > /etc/containers/containers.conf <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
}

make_base() {
  podman image exists "$BASE_TAG" && return 0
  local tmp; tmp=$(mktemp -d /var/tmp/ci-oci.XXXX)
  log "mmdebstrap $SUITE minbase -> $BASE_TAG"
  # HTTPS from these machines goes through a proxy with its own CA: carry the CAs (/usr/local/share/ca-certificates) into the
  # image, so update-ca-certificates (ca-certificates' postinst) trusts them inside builds.
  # path-exclude mimics the official -slim images (no man pages, docs, locales).
  # shellcheck disable=SC2016 # the hook expands $1 itself
  mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"; cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true' \
    "$SUITE" "$tmp/rootfs.tar"
  podman import --change 'CMD ["bash"]' "$tmp/rootfs.tar" "$BASE_TAG" >/dev/null
  rm -rf "$tmp"
}

make_rust() {
  [ -n "${NO_RUST:-}" ] && return 0
  podman image exists "$RUST_TAG" && return 0
  local src tc ctr mnt
  src=$(readlink -f "$(rustup toolchain list -v | awk '/\(.*default.*\)/{print $NF}')")
  "$src/bin/rustc" --version | grep -q "^rustc $RUST_VERSION " \
    || { log "host default toolchain is not $RUST_VERSION"; return 1; }
  tc=$RUST_VERSION-x86_64-unknown-linux-gnu
  log "$RUST_TAG from $BASE_TAG + $src"
  ctr=$(buildah from --pull=never "$BASE_TAG")
  # Roughly what rust:*-bookworm gets from buildpack-deps (a subset).
  buildah run "$ctr" -- sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends ca-certificates curl git gcc g++ libc6-dev make pkg-config libssl-dev \
    procps netbase xz-utils file patch unzip >/dev/null && rm -rf /var/lib/apt/lists/*'
  mnt=$(buildah mount "$ctr")
  install -d "$mnt/usr/local/rustup/toolchains/$tc" "$mnt/usr/local/cargo/bin"
  tar -C "$src" --exclude=./share/doc -cf - . | tar -C "$mnt/usr/local/rustup/toolchains/$tc" -xf -
  sed -i '/^rust-docs/d' "$mnt/usr/local/rustup/toolchains/$tc/lib/rustlib/components"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$tc" > "$mnt/usr/local/rustup/settings.toml"
  cp "$(readlink -f "$(command -v rustup)")" "$mnt/usr/local/cargo/bin/rustup"
  for t in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-gdbgui rust-lldb; do
    ln -sf rustup "$mnt/usr/local/cargo/bin/$t"
  done
  chmod -R a+w "$mnt/usr/local/rustup" "$mnt/usr/local/cargo"
  buildah umount "$ctr" >/dev/null
  buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION="$RUST_VERSION" --cmd bash "$ctr"
  buildah commit --rm --quiet "$ctr" "$RUST_TAG" >/dev/null
}

case "${1:-}" in
  prepare) install_tools; configure; make_base; make_rust; podman images ;;
  # --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
  build)   tag=$2; dir=${3:-.}; f=${4:-$dir/Dockerfile}
           nice -n 10 podman build --pull=never --layers --format docker -t "$tag" -f "$f" "$dir" ;;
  # No --init: the image's own entrypoint (tini) is PID 1 and forwards signals.
  run)     tag=$2; shift 2; podman run -d --pull=never "$@" "$tag" ;;
  *) echo "usage: $0 prepare | build TAG [DIR] [DOCKERFILE] | run TAG [args]" >&2; exit 2 ;;
esac
