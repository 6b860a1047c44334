#!/usr/bin/env bash
# Build the stages image and the operator image, and print their references on stdout, stages
# first, one per line (everything else goes to stderr):
#   bash scripts/images.sh
#   SLUICE_STAGES_IMAGE="$(bash scripts/images.sh | head -1)"
#
# Engine: docker when its daemon answers, else podman (scripts/container-engine.sh; podman is
# installed with apt-get when missing and this runs as root). No registry is needed: the base images
# are made from Debian packages with mmdebstrap (bookworm minbase, python3, ca-certificates, git,
# openssh-client; the build stage's base adds python3-venv) and kept in the engine's storage under a
# tag that hashes their recipe, so a second build reuses them. Python packages come from the
# package index, at the versions pinned in requirements.lock.
#
# Environment:
#   SLUICE_CONTAINER_ENGINE   podman or docker (default: whichever is installed, podman first)
#   SLUICE_IMAGE_PREFIX       where the images are named (default: localhost), e.g.
#                             registry.example.com/sluice -> registry.example.com/sluice/sluice-stages:0.1.0
#   SLUICE_IMAGE_TAG          their tag (default: the version in pyproject.toml)
#   SLUICE_BASE_IMAGE         a ready base with Python 3.11 instead of the Debian-made one, e.g.
#                             python:3.11.13-slim-bookworm (then it is also the build stage's base)
#   SLUICE_DEBIAN_MIRROR      Debian mirror for mmdebstrap (default: http://deb.debian.org/debian)
#   SLUICE_DEBIAN_SECURITY    Debian security mirror (default: http://deb.debian.org/debian-security;
#                             "none" leaves it out, e.g. with an offline mirror)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   passed to the builds' pip (an internal package index)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
# shellcheck source=scripts/container-engine.sh
source scripts/container-engine.sh
sluice_engine_setup

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
prefix="${SLUICE_IMAGE_PREFIX:-localhost}"
tag="${SLUICE_IMAGE_TAG:-$version}"
stages_ref="$prefix/sluice-stages:$tag"
operator_ref="$prefix/sluice-operator:$tag"

suite=bookworm
runtime_packages="python3,ca-certificates,git,openssh-client"
build_packages="$runtime_packages,python3-venv"
mirror="${SLUICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${SLUICE_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"

# A base image from Debian packages: minbase plus PACKAGES, without documentation, manual pages,
# locales or apt's lists. Its tag hashes the recipe, so a changed recipe makes a new base.
debian_base() {
  local name="$1" packages="$2"
  local sources=("deb $mirror $suite main" "deb $mirror $suite-updates main")
  [ "$security" = none ] || sources+=("deb $security $suite-security main")
  local recipe
  recipe="$(printf '%s\n' "mmdebstrap-v1" "$suite" "$packages" "${sources[@]}" | sha256sum | cut -c1-12)"
  local ref="localhost/$name:$suite-$recipe"
  if sluice_image_exists "$ref"; then
    sluice_log "base $ref: present, reused"
    echo "$ref"
    return 0
  fi
  sluice_apt_install mmdebstrap:mmdebstrap || return 1
  local out="$SLUICE_TOOLS_DIR/images" started=$SECONDS
  mkdir -p "$out"
  rm -f "$out/$name.tar"
  sluice_log "base $ref: mmdebstrap $suite minbase + $packages"
  mmdebstrap --variant=minbase --quiet \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --include="$packages" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
    "$suite" "$out/$name.tar" "${sources[@]}" >&2
  sluice_engine import --change 'CMD ["/bin/bash"]' "$out/$name.tar" "$ref" >/dev/null
  rm -f "$out/$name.tar"
  sluice_log "base $ref: made in $((SECONDS - started)) s"
  echo "$ref"
}

if [ -n "${SLUICE_BASE_IMAGE:-}" ]; then
  base="$SLUICE_BASE_IMAGE"
  build_base="$SLUICE_BASE_IMAGE"
else
  base="$(debian_base sluice-base "$runtime_packages")"
  build_base="$(debian_base sluice-build-base "$build_packages")"
fi

# pip's index (an internal mirror) reaches the build stage as build arguments when set here.
index_args=()
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  [ -n "${!name:-}" ] && index_args+=(--build-arg "$name=${!name}")
done

build() {
  local ref="$1" dockerfile="$2" started=$SECONDS
  sluice_log "building $ref from $dockerfile ($SLUICE_ENGINE, base $base)"
  sluice_engine build "${sluice_build_args[@]}" ${index_args[@]+"${index_args[@]}"} \
    --build-arg "BASE=$base" --build-arg "BUILD_BASE=$build_base" \
    --label "org.opencontainers.image.base.name=$base" --label "org.opencontainers.image.version=$version" \
    -f "$dockerfile" -t "$ref" . >&2
  sluice_log "built $ref in $((SECONDS - started)) s"
}

build "$stages_ref" stages/Dockerfile
build "$operator_ref" images/operator/Dockerfile
echo "$stages_ref"
echo "$operator_ref"
