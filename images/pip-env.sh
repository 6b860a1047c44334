# shellcheck shell=sh
# Sourced (`. /opt/build/pip-env.sh && ...`) by every RUN of the images' build stages that runs pip
# (images/operator/Dockerfile, stages/Dockerfile): one place for how the builds run pip. It never
# reaches a final image: only the build stages copy it.
# - no cache, no version check, no warning about running as root; imports write no bytecode (pip
#   compiles the installed packages' bytecode itself)
# - the host's CA bundle, when the build mounts it (scripts/container-engine.sh), is trusted
# - PIP_INDEX_URL / PIP_EXTRA_INDEX_URL, build arguments that are empty unless scripts/images.sh
#   passes an internal index, are unset when empty: pip then uses PyPI
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi
if [ -z "${PIP_INDEX_URL:-}" ]; then unset PIP_INDEX_URL; fi
if [ -z "${PIP_EXTRA_INDEX_URL:-}" ]; then unset PIP_EXTRA_INDEX_URL; fi
