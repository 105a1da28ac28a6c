#!/usr/bin/env bash
# GPU check for the trainer: the gpu-marked tests, LoRA vs full fine-tuning of a ~0.5B Llama,
# then bench/real_models.py (bf16 base memory, gradient checkpointing, padding) on the device,
# and on a machine with 2+ GPUs bench/distributed.py --device cuda (2 GPUs and all GPUs).
# Needs one CUDA device and a Python with CUDA torch + the project's dependencies
# (PYTHON=/path/to/python to pick one; default: python3 on PATH). Results go to $OUT if set.
# Wheels in .whl/ (bench/gpu_wheels.sh fetches them) are installed first, for machines that
# reach no package registry. Takes about 4-7 minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$(mktemp -d -t loraplane-gpu-XXXXXX)}"
mkdir -p "$OUT"
echo "results in $OUT"

if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/loraplane-site .whl/*.whl
    export PYTHONPATH="/tmp/loraplane-site${PYTHONPATH:+:$PYTHONPATH}"
fi

# The worker speaks the SDK (clients/python), which the tree carries as source.
export PYTHONPATH="$PWD/clients/python${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" - <<'PY' | tee "$OUT/env.txt"
import torch, transformers, peft, pydantic, omegaconf
print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__,
      "peft", peft.__version__)
assert torch.cuda.is_available(), "no CUDA device visible"
print("device", torch.cuda.get_device_name(), "bf16", torch.cuda.is_bf16_supported())
PY
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true

status=0
# --confcutdir keeps the check to the trainer's own fixtures (no API/DB set-up needed here).
"$PYTHON" -m pytest tests/worker/trainer -m gpu -q -p no:cacheprovider \
    --confcutdir=tests/worker/trainer \
    -o addopts="" --junitxml="$OUT/gpu_tests.xml" 2>&1 | tee "$OUT/gpu_tests.txt" || status=1

timeout 420 "$PYTHON" bench/gpu_train.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.txt" || status=1
# Precision, gradient checkpointing and batching figures on the device (bench/real_models.py).
timeout 420 "$PYTHON" bench/real_models.py --device cuda --out "$OUT" 2>&1 \
    | tee "$OUT/real_models.txt" || status=1

# Several GPUs: bench/distributed.py's 2-GPU and all-GPU cases (NCCL; step time, scaling
# efficiency, memory per GPU under full_shard and no_shard). One GPU: said, and skipped.
gpus=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
if [ "$gpus" -ge 2 ]; then
    timeout 600 "$PYTHON" bench/distributed.py --device cuda --out "$OUT" 2>&1 \
        | tee "$OUT/distributed.txt" || status=1
else
    echo "$gpus GPU: the multi-GPU cases of bench/distributed.py need 2 or more; skipped" \
        | tee "$OUT/distributed.txt"
fi

echo "gpu check finished with status $status; results in $OUT"
exit $status
