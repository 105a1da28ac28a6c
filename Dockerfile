# One image for every role: `serve` (the API), `worker` and `migrate` (entrypoint `loraplane`).
#
#   docker build -t loraplane/loraplane:0.1.0 .                                  # CPU (default)
#   docker build --build-arg VARIANT=cuda -t loraplane/loraplane-cuda:0.1.0 .    # CUDA workers
#
# VARIANT=cpu: python slim base; torch pinned by constraints-cpu.txt, taken from the PyTorch
#   CPU index (TORCH_CPU_INDEX), as `make` and CI pin it from local wheels.
# VARIANT=cuda: nvidia/cuda base (the driver is injected by the NVIDIA container runtime);
#   no constraints file: pip picks the CUDA build of torch from PyPI (or TORCH_CUDA_INDEX),
#   which bundles the CUDA libraries; the host driver must support that CUDA version.
#   Pick another base with --build-arg CUDA_IMAGE=... to match your drivers.
# The install steps are deploy/install.sh, the same script `make` and CI run.

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-base-ubuntu24.04

# ---------------------------------------------------------------- per-variant base images
FROM ${PYTHON_IMAGE} AS base-cpu
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM ${CUDA_IMAGE} AS base-cuda
# Ubuntu 24.04's python3 is 3.12 (loraplane needs >= 3.11).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# hadolint ignore=DL3006
FROM base-${VARIANT} AS base
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHON=python3

# ---------------------------------------------------------------- build: the virtualenv
FROM base AS build
ARG VARIANT
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# Empty: PyPI's default CUDA build. E.g. https://download.pytorch.org/whl/cu126 for CUDA 12.6.
ARG TORCH_CUDA_INDEX=
WORKDIR /opt/loraplane/src
# Dependencies first (torch is large): this layer is rebuilt only when these files change.
COPY pyproject.toml constraints-cpu.txt README.md ./
COPY deploy/install.sh deploy/install.sh
RUN --mount=type=cache,target=/root/.cache/pip \
    case "$VARIANT" in \
      cpu)  export PIP_EXTRA_INDEX_URL="$TORCH_CPU_INDEX"; constraints="constraints-cpu.txt" ;; \
      cuda) [ -z "$TORCH_CUDA_INDEX" ] || export PIP_EXTRA_INDEX_URL="$TORCH_CUDA_INDEX"; constraints="" ;; \
      *)    echo "VARIANT must be cpu or cuda, not '$VARIANT'" >&2; exit 2 ;; \
    esac \
 && deploy/install.sh /opt/loraplane/venv "" "$constraints"
# Then the code; the same script installs the project itself (its dependencies are met).
COPY api api
COPY cli cli
COPY db db
COPY service service
COPY worker worker
COPY clients/python clients/python
RUN --mount=type=cache,target=/root/.cache/pip \
    case "$VARIANT" in \
      cpu)  export PIP_EXTRA_INDEX_URL="$TORCH_CPU_INDEX"; constraints="constraints-cpu.txt" ;; \
      cuda) [ -z "$TORCH_CUDA_INDEX" ] || export PIP_EXTRA_INDEX_URL="$TORCH_CUDA_INDEX"; constraints="" ;; \
    esac \
 && deploy/install.sh /opt/loraplane/venv "" "$constraints" \
 && /opt/loraplane/venv/bin/python -m compileall -q api cli db service worker clients/python \
 && /opt/loraplane/venv/bin/loraplane --help >/dev/null

# ---------------------------------------------------------------- runtime
FROM base AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="loraplane" \
      org.opencontainers.image.description="Train, register and serve LoRA adapters" \
      io.loraplane.variant="${VARIANT}"
# A fixed numeric uid, so Kubernetes can verify runAsNonRoot; the data folders exist and
# belong to it, so fresh named volumes mounted there are writable.
RUN groupadd --system --gid 10001 loraplane \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/loraplane \
            --shell /usr/sbin/nologin loraplane \
 && mkdir -p /var/lib/loraplane/artifacts /var/lib/loraplane/models /var/lib/loraplane/worker \
 && chown -R 10001:10001 /var/lib/loraplane
# The virtualenv installs the project in editable mode (as `make` does), so the code stays at
# the path it was installed from. Both stay root-owned: the app cannot rewrite itself.
COPY --from=build /opt/loraplane /opt/loraplane
ENV PATH=/opt/loraplane/venv/bin:$PATH \
    HOME=/var/lib/loraplane \
    HF_HOME=/var/lib/loraplane/hf \
    LORAPLANE_DATA_DIR=/var/lib/loraplane \
    LORAPLANE_HOST=0.0.0.0 \
    LORAPLANE_PORT=8000
USER 10001:10001
WORKDIR /var/lib/loraplane
EXPOSE 8000
# Liveness of `serve`; a container running `worker` or `migrate` (no HTTP server) reports
# healthy, since PID 1 (tini) carries the command line.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as r; b'serve' in open('/proc/1/cmdline', 'rb').read().split(b'\\0') or sys.exit(0); r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LORAPLANE_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["tini", "--", "loraplane"]
# Embedded default: API + one local worker on SQLite under /var/lib/loraplane. Compose and
# Kubernetes run `serve --workers 0`, `worker ...` and `migrate` instead.
CMD ["serve"]
