#!/bin/sh
# The final stage of both images (operator and stages) starts here: git and ssh when the base lacks
# them (a base made by scripts/images.sh has them; python:3.11-slim does not), then the unprivileged
# user the pods run as. Each Dockerfile runs it with its own uid, bind-mounted from the build
# context so the script itself stays out of the image:
#   RUN --mount=type=bind,source=images/runtime-base.sh,target=/opt/build/runtime-base.sh \
#       sh /opt/build/runtime-base.sh UID
set -eu
uid="$1"
if ! command -v git >/dev/null 2>&1; then
  apt-get update
  apt-get install --yes --no-install-recommends git openssh-client ca-certificates
  rm -rf /var/lib/apt/lists/*
fi
groupadd --gid "$uid" sluice
useradd --uid "$uid" --gid "$uid" --no-create-home --home-dir /tmp --shell /usr/sbin/nologin sluice
