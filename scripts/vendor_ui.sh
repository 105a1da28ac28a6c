#!/usr/bin/env bash
# Refresh the dashboard's vendored chart library (uPlot) from the npm registry, exactly as
# api/ui/package-lock.json pins it, into api/ui/static/vendor/ (committed; the server never
# reaches a network or a CDN). Run after changing api/ui/package.json, then commit the lock
# file and the vendored files together.
set -euo pipefail
ui="$(cd "$(dirname "$0")/../api/ui" && pwd)"
cd "$ui"
npm ci --no-audit --no-fund --ignore-scripts
mkdir -p static/vendor
cp node_modules/uplot/dist/uPlot.iife.min.js static/vendor/uPlot.iife.min.js
cp node_modules/uplot/dist/uPlot.min.css static/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE static/vendor/uPlot.LICENSE
rm -rf node_modules
echo "vendored uPlot $(node -p 'require("./package-lock.json").packages["node_modules/uplot"].version') into $ui/static/vendor"
