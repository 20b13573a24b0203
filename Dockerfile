# syntax=docker/dockerfile:1
# One file, one target per process (SPEC §7):
#   docker build --target auth    -t till-auth:0.1.0 .
#   docker build --target tools   -t till-tools:0.1.0 .
#   docker build --target gateway -t till-gateway:0.1.0 .
#   docker build --target migrate -t till-migrate:0.1.0 .     # `till` CLI: migrate, keys, revoke…
# Each runtime image holds only a virtualenv with its own package and its dependencies, installed
# from the workspace's one uv.lock (--frozen: the lock is the truth, never re-resolved). No
# compiler, no uv, no sources, no curl; runs as uid 10001.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- builder: uv + the lock + every member's pyproject (the dependency layers cache on these) ----
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/db/pyproject.toml libs/db/
COPY services/auth/pyproject.toml services/auth/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/tools/pyproject.toml services/tools/
COPY services/cli/pyproject.toml services/cli/

# ---- one build stage per package: third-party dependencies first, then the workspace members ----
FROM builder AS build-auth
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package till-auth
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package till-auth

FROM builder AS build-tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package till-tools
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package till-tools

FROM builder AS build-gateway
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package till-gateway
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package till-gateway

FROM builder AS build-migrate
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package till-cli
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package till-cli

# ---- runtime base: the same Python as the builder (the venv links to /usr/local/bin/python3.11) ----
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 till \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin till
WORKDIR /app
USER 10001:10001
STOPSIGNAL SIGTERM

FROM runtime AS auth
COPY --from=build-auth /app/.venv /app/.venv
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8001/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["till-auth"]
CMD ["--host", "0.0.0.0", "--port", "8001"]

FROM runtime AS tools
COPY --from=build-tools /app/.venv /app/.venv
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8002/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["till-tools"]
CMD ["--host", "0.0.0.0", "--port", "8002"]

FROM runtime AS migrate
COPY --from=build-migrate /app/.venv /app/.venv
HEALTHCHECK NONE
ENTRYPOINT ["till"]
CMD ["migrate"]

# Last, so that a plain `docker build .` yields the public face.
FROM runtime AS gateway
COPY --from=build-gateway /app/.venv /app/.venv
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["till-gateway"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
