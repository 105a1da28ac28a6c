#!/usr/bin/env bash
# Makes sure a Compose CLI exists for tests/deploy/test_compose.py (`docker compose config` validates
# deploy/compose.yaml; no Docker engine is needed). Does nothing when one is there; else, as
# root on Debian/Ubuntu, installs Debian's `docker-compose` package non-interactively.
# Elsewhere it only says what is missing: the test then skips (outside CI) or fails (in CI).
set -euo pipefail

if docker compose version >/dev/null 2>&1 || docker-compose --version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-compose: installing Debian's docker-compose (compose file validation)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; refresh them only when needed.
  if ! apt-get install -y -q --no-install-recommends docker-compose >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends docker-compose >/dev/null
  fi
  docker-compose --version >&2
  exit 0
fi
echo "ensure-compose: no 'docker compose' plugin nor 'docker-compose' found; install one" \
     "(apt-get install docker-compose) to validate deploy/compose.yaml" >&2
