# syntax=docker/dockerfile:1
#
# cellsearch container image: API, worker, migrations and dashboard in one image;
# the command picks the role (`serve`, `worker`, `migrate`, `dashboard`).
#
# Build arguments
#   BASE_IMAGE       base image (default python:3.11-slim). Any Debian or Ubuntu
#                    image works; when it has no Python >= 3.11, python3 is
#                    installed with apt (use an Ubuntu 24.04 based image then, e.g.
#                    an nvidia/cuda "runtime" tag, for a CUDA build).
#   TORCH_INDEX_URL  package index that torch is installed from, before the project.
#                    Empty (default): plain `pip install torch` from pip's configured
#                    index. For a small CPU-only image pass PyTorch's CPU wheel index
#                    (see the PyTorch installation page for its address).
#   PIP_EXTRAS       extras installed with the project (default: postgres).
#
# CPU image:
#   docker build --build-arg TORCH_INDEX_URL=<pytorch cpu wheel index> -t cellsearch .
# CUDA image (run with the NVIDIA container toolkit, `--gpus all`):
#   docker build --build-arg BASE_IMAGE=<nvidia/cuda runtime tag, ubuntu24.04> \
#                --build-arg TORCH_INDEX_URL=<pytorch cuda wheel index> -t cellsearch:cuda .

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# base: a Python interpreter and the unprivileged user, shared by both stages
# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive

# CUDA runtime images ship without Python: install the distribution's python3
# (it must be 3.11 or newer) only when the base has none of its own.
RUN set -eux; \
    if ! command -v python3 >/dev/null 2>&1 \
       || ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
        apt-get update; \
        apt-get install -y --no-install-recommends python3 python3-venv ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version'

RUN set -eux; \
    groupadd --system --gid 10001 cellsearch; \
    useradd --system --uid 10001 --gid cellsearch --create-home \
        --home-dir /home/cellsearch --shell /usr/sbin/nologin cellsearch

# ---------------------------------------------------------------------------
# build: a virtual environment with torch and the project
# ---------------------------------------------------------------------------
FROM base AS build

ARG TORCH_INDEX_URL=""
ARG PIP_EXTRAS=postgres

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip setuptools wheel

# torch first, in its own layer, so that code changes do not re-download it.
RUN set -eux; \
    if [ -n "${TORCH_INDEX_URL}" ]; then \
        pip install --index-url "${TORCH_INDEX_URL}" torch; \
    else \
        pip install torch; \
    fi

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN set -eux; \
    if [ -n "${PIP_EXTRAS}" ]; then pip install ".[${PIP_EXTRAS}]"; else pip install .; fi; \
    cellsearch --help >/dev/null

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM base AS runtime

LABEL org.opencontainers.image.title="cellsearch" \
      org.opencontainers.image.description="Hyperparameter search in which the recurrent cell type is a hyperparameter"

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/cellsearch \
    CELLSEARCH_HOST=0.0.0.0 \
    CELLSEARCH_PORT=8000

# Working directory, owned by the unprivileged user: the embedded SQLite default
# and caches land here. Mount a volume on /data to keep a single container's
# SQLite database; with PostgreSQL nothing here needs to persist but the kept models,
# in /data/artifacts (docker-compose.yml mounts a shared volume there, which starts
# out owned by this user because the directory is).
RUN mkdir -p /data/artifacts && chown -R cellsearch:cellsearch /data
WORKDIR /data

USER cellsearch:cellsearch

EXPOSE 8000 8080

# Liveness of the API role. Workers, migrations and the dashboard override or
# disable it (see docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/api/v1/healthz' % os.environ.get('CELLSEARCH_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["cellsearch"]
CMD ["serve", "--workers", "0"]
