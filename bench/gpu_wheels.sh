#!/usr/bin/env bash
# Fetch, into .whl/, the wheels the GPU check needs beyond what the lent GPU machines hold.
#
# Those machines (see the device tool's KINDS.md) run Python 3.12 with torch, transformers,
# peft, safetensors, PyYAML and pytest installed, and reach no package registry. The trainer
# also imports pydantic (the spec) and omegaconf (spec interpolation), and the worker's SDK
# (clients/python, on PYTHONPATH there) imports attrs and httpx: this script downloads
# the versions this venv was tested with, as cp312 manylinux wheels, for the call to carry:
#
#   bench/gpu_wheels.sh                       # here, with PyPI reachable
#   device run, carry [".whl"]: bench/gpu_check.sh   # gpu_check.sh installs .whl/ first
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }

rm -rf .whl && mkdir .whl
pins=()
for dist in pydantic pydantic_core annotated-types typing-inspection typing_extensions omegaconf attrs httpx httpcore h11 anyio idna certifi; do
    pins+=("$dist==$(version "$dist")")
done
echo "fetching: ${pins[*]}"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
ls -l .whl
