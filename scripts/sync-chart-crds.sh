#!/usr/bin/env bash
# Copy the CustomResourceDefinitions into the Helm chart, so `helm install` installs exactly the
# CRDs that `crds/*.yaml` and `sluice crds` hold. Run it after any change to the CRDs.
#
#   scripts/sync-chart-crds.sh           copy crds/*.yaml to charts/sluice/crds/ (stale files removed)
#   scripts/sync-chart-crds.sh --check   change nothing; exit 1 and name the files that differ
#
# SLUICE_CRDS_DIR and CHART_CRDS_DIR override the two folders (tests use them).
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir="${SLUICE_CRDS_DIR:-crds}"
chart_dir="${CHART_CRDS_DIR:-charts/sluice/crds}"
mode="${1:-sync}"
case "$mode" in
  sync|--check) ;;
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "sync-chart-crds.sh: unknown argument: $mode (expected --check or nothing)" >&2; exit 2 ;;
esac
if [ ! -d "$source_dir" ]; then
  echo "sync-chart-crds.sh: $source_dir: no such directory" >&2
  exit 1
fi
mkdir -p "$chart_dir"

drift=0
shopt -s nullglob
for source in "$source_dir"/*.yaml; do
  target="$chart_dir/$(basename "$source")"
  if ! cmp -s "$source" "$target"; then
    drift=1
    if [ "$mode" = --check ]; then
      echo "out of date: $target (differs from $source)" >&2
    else
      cp "$source" "$target"
      echo "copied $source -> $target"
    fi
  fi
done
for target in "$chart_dir"/*.yaml; do
  if [ ! -e "$source_dir/$(basename "$target")" ]; then
    drift=1
    if [ "$mode" = --check ]; then
      echo "stale: $target (no $source_dir/$(basename "$target"))" >&2
    else
      rm "$target"
      echo "removed $target"
    fi
  fi
done
if [ "$mode" = --check ] && [ "$drift" -ne 0 ]; then
  echo "run scripts/sync-chart-crds.sh to update the chart's CRDs" >&2
  exit 1
fi
exit 0
