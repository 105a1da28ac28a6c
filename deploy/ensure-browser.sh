#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the dashboard's browser tests
# (tests/ui, marker `browser`: Playwright drives it headless; no `playwright install`, no
# browser download). Does nothing when it is there; else, as root on Debian/Ubuntu, installs
# the `chromium` package non-interactively (about 20 s). Elsewhere it only says what is
# missing, and the browser tests fail saying so.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: installing Debian's chromium (dashboard tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; refresh them only when needed.
  if ! apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends chromium >/dev/null
  fi
  command -v chromium >&2
  exit 0
fi
echo "ensure-browser: no chromium found; install Debian's chromium package" \
     "(apt-get install chromium) to run the dashboard tests (tests/ui)" >&2
