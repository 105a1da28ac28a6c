#!/usr/bin/env bash
# Installs loraplane into a virtualenv. The same script serves `make`, CI and the Dockerfile.
#   deploy/install.sh VENV [EXTRAS] [CONSTRAINTS]
#   VENV: virtualenv folder (created if missing); EXTRAS: e.g. "test"; CONSTRAINTS: pip
#   constraints file ("" for none: GPU images pick their own torch build).
# Package sources: pip's own environment variables pass through untouched, so the CPU image
# build sets PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (a `+cpu` torch wins
# over PyPI's build of the same version); `make` and CI set nothing and use pip's config.
set -euo pipefail
venv=${1:?usage: install.sh VENV [EXTRAS] [CONSTRAINTS]}
extras=${2:-}
constraints=${3-constraints-cpu.txt}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
args=(--quiet)
[ -n "$constraints" ] && args+=(-c "$here/$constraints")
# The SDK (clients/python, distribution loraplane-client) first: the worker and the CLI speak
# to the server through it. It is absent from the image's dependency-only layer.
if [ -f "$here/clients/python/pyproject.toml" ]; then
  "$venv/bin/python" -m pip install "${args[@]}" -e "$here/clients/python"
fi
target="$here"
[ -n "$extras" ] && target="$here[$extras]"
"$venv/bin/python" -m pip install "${args[@]}" -e "$target"
