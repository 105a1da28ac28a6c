#!/usr/bin/env bash
# `make bench`: every benchmark in its quick mode, one result line each (about 6-7 minutes on
# 2 cores). Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`), as `make test`;
# LORAPLANE_BENCH_PG overrides the URL. PYTHON picks the interpreter; default: `python` on
# PATH if it has the project's dependencies (as under `make bench`), else .venv/bin/python.
# Full-size runs and the GPU check: see BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=.venv/bin/python
    if command -v python >/dev/null && python -c 'import importlib.util as u, sys; sys.exit(
            not all(u.find_spec(m) for m in ("torch", "peft", "fastapi", "psutil", "httpx")))'
    then
        PYTHON=python
    fi
fi
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"

status=0
for script in dispatch claim_throughput api_read transfer lora_vs_full train_overhead real_models \
        distributed; do
    started=$(date +%s)
    if ! "$PYTHON" "bench/$script.py" --quick; then
        echo "bench/$script.py: FAILED" >&2
        status=1
    fi
    echo "  ($script: $(( $(date +%s) - started )) s)" >&2
done
exit $status
