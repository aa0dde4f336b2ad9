#!/usr/bin/env bash
# Regenerates docs/alexnet-towers.svg (alexc graph) and docs/alexnet-towers.png (the SVG rendered by
# headless Chromium at the SVG's own size), the picture the README shows.
# usage: scripts/render-graph.sh [MODEL.net] [OUT-BASENAME]   (default: models/alexnet.net docs/alexnet-towers)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/alexnet.net}
base=${2:-docs/alexnet-towers}
node=node_modules/.bin/node
[ -x "$node" ] || node=node
chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chromium" ]; then
  echo "render-graph: no Chromium found (Debian: apt-get install chromium)" >&2
  exit 1
fi

"$node" compiler/cli.ts graph "$model" -o "$base.svg"
# The window is the SVG's own size, read from its root element, so the PNG shows it whole at 1:1.
size=$(sed -n 's/^<svg [^>]* width="\([0-9]*\)" height="\([0-9]*\)".*/\1,\2/p' "$base.svg" | head -n 1)
[ -n "$size" ] || { echo "render-graph: no width/height in $base.svg" >&2; exit 1; }
png=$(mktemp --suffix=.png)
trap 'rm -f "$png"' EXIT
nice -n 19 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
  --window-size="$size" --screenshot="$png" "file://$(realpath "$base.svg")" >/dev/null 2>&1
[ -s "$png" ] || { echo "render-graph: Chromium wrote no screenshot" >&2; exit 1; }
mv "$png" "$base.png"
chmod 644 "$base.png"
trap - EXIT
echo "wrote $base.svg and $base.png ($size)"
