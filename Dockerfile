# The CoCo server image: `docker compose up -d` runs it beside PostgreSQL 18.
# Build stage: turn the checkout into a wheel (setup.py bundles migrations/ and
# schema/ into the package, so the runtime image needs no source tree).
FROM python:3.12-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The dependencies first, exactly as locked (versions and hashes, `make lock`): this layer is rebuilt
# only when the lock changes.
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --require-hashes -r /tmp/runtime.txt && rm /tmp/runtime.txt \
    && useradd --system --uid 10001 --home-dir /home/coco --create-home --shell /usr/sbin/nologin coco
# Then the server itself, without dependencies: all of them come from the lock.
COPY --from=build /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels && pip check
USER coco
WORKDIR /home/coco
# DATABASE_URL comes from docker-compose.yml (or `docker run -e`); the server
# retries its first connection for COCO_DATABASE_WAIT_SECONDS while the
# database starts, then migrates and serves.
ENV COCO_PORT=2626 \
    COCO_DATABASE_WAIT_SECONDS=60 \
    COCO_MIGRATE_ON_START=true
EXPOSE 2626
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('COCO_PORT', '2626'), timeout=4)"
CMD ["coco", "serve", "--host", "0.0.0.0"]
