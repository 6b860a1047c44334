# shellcheck shell=bash
# Container engine setup shared by scripts/images.sh and `sluice run --containers`: source it, then
# call `sluice_engine_setup` once. Afterwards:
#   SLUICE_ENGINE        podman or docker (the command to run)
#   CONTAINERS_CONF      (podman) the containers.conf this machine needs, exported
#   sluice_engine ARGS   runs the engine with ARGS
#   sluice_build_args    (array) flags `build` needs here: host network, and with podman the host's
#                        CA bundle mounted read-only (pip inside a build step must trust the same
#                        certificate authorities as the host; TLS may be re-signed by a proxy)
#
# Choice of engine (the same as `sluice run --containers`, controller/executors/local/engines.py):
# $SLUICE_CONTAINER_ENGINE (podman|docker) if set, else docker when its daemon answers (`docker info`;
# a docker command without a daemon is no engine), else podman, installed with apt-get when missing
# (root only). Nothing here needs a registry: images are built from bases made locally (see
# scripts/images.sh).
#
# podman's defaults fail on machines without systemd, with cgroups in hybrid mode, or where crun
# cannot raise RLIMIT_NOFILE. So podman always gets a containers.conf of its own (unless the caller
# exported CONTAINERS_CONF): runc when installed, cgroupfs unless systemd runs, lowered ulimits.
# Its content has one definition, podman_conf() in controller/executors/local/engines.py (standard
# library only, run here with python3); it is written under the repository's .tools/ (never to
# /etc: an administrator's config stays).

SLUICE_REPO_ROOT="${SLUICE_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SLUICE_TOOLS_DIR="${SLUICE_TOOLS_DIR:-$SLUICE_REPO_ROOT/.tools}"

sluice_log() { printf '%s\n' "$*" >&2; }

# Install Debian packages for commands that are missing: sluice_apt_install CMD:PACKAGE...
# Returns non-zero (with a message) when a command is missing and apt-get cannot run as root, or
# SLUICE_NO_INSTALL=1 (callers that only look, like the benchmark, install nothing).
sluice_apt_install() {
  local wanted=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || wanted+=("${pair#*:}")
  done
  [ "${#wanted[@]}" -eq 0 ] && return 0
  if [ "${SLUICE_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    sluice_log "missing: ${wanted[*]} (install them, or run as root on Debian/Ubuntu to have them installed)"
    return 1
  fi
  sluice_log "installing ${wanted[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >&2
}

sluice_podman_conf() {
  local conf
  conf="$(python3 "$SLUICE_REPO_ROOT/controller/executors/local/engines.py" conf "$SLUICE_TOOLS_DIR/containers")" || return 1
  export CONTAINERS_CONF="$conf"
}

sluice_engine_setup() {
  local engine="${SLUICE_CONTAINER_ENGINE:-}"
  if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
      engine=docker
    else
      engine=podman
    fi
  fi
  case "$engine" in
    podman)
      sluice_apt_install podman:podman runc:runc || return 1
      [ -n "${CONTAINERS_CONF:-}" ] || sluice_podman_conf
      ;;
    docker)
      command -v docker >/dev/null 2>&1 || {
        sluice_log "docker is not installed"
        return 1
      }
      ;;
    *)
      sluice_log "SLUICE_CONTAINER_ENGINE must be podman or docker, not '$engine'"
      return 1
      ;;
  esac
  SLUICE_ENGINE="$engine"
  export SLUICE_ENGINE
  sluice_build_args=(--network host)
  local ca=/etc/ssl/certs/ca-certificates.crt
  if [ "$engine" = podman ] && [ -s "$ca" ]; then
    sluice_build_args+=(-v "$ca:$ca:ro")
  fi
}

sluice_engine() { "$SLUICE_ENGINE" "$@"; }

# True when IMAGE exists in the engine's local storage.
sluice_image_exists() {
  if [ "$SLUICE_ENGINE" = podman ]; then
    podman image exists "$1"
  else
    docker image inspect "$1" >/dev/null 2>&1
  fi
}
