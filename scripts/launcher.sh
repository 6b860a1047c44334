#!/usr/bin/env bash
# Make `sluice` usable from any shell after scripts/setup.sh: when ~/.local/bin is on PATH, link
# ~/.local/bin/sluice to .venv/bin/sluice (the venv's script keeps its interpreter wherever it is
# called from); an existing ~/.local/bin/sluice that is not such a link is left alone. Otherwise
# print the one line that puts the venv on PATH. Prints what it did on one line; always exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$PWD/.venv/bin/sluice"
bin_dir="$HOME/.local/bin"
link="$bin_dir/sluice"
case ":${PATH}:" in
  *":${bin_dir}:"*|*":${bin_dir}/:"*)
    if [ -e "$link" ] && [ ! -L "$link" ]; then
      echo "sluice: $link exists and is not a link, left alone; run $target, or: source $PWD/.venv/bin/activate"
    else
      mkdir -p "$bin_dir"
      ln -sfn "$target" "$link"
      echo "sluice is on your PATH: $link -> $target"
    fi
    ;;
  *)
    echo "sluice: to use it from any shell, add to your shell profile: export PATH=\"$PWD/.venv/bin:\$PATH\"" \
      "(or, for this shell only: source $PWD/.venv/bin/activate)"
    ;;
esac
