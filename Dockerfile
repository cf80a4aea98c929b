# otelspend in one process: OTLP receivers (4317 gRPC, 4318 HTTP) and the REST API (8000).
# Built from the registries only (python base image, PyPI wheels); no compilers needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid so volumes can be prepared for it (chown 10001) on any host.
RUN groupadd --system --gid 10001 otelspend \
 && useradd --system --uid 10001 --gid otelspend --home-dir /var/lib/otelspend --shell /usr/sbin/nologin otelspend \
 && mkdir -p /var/lib/otelspend \
 && chown otelspend:otelspend /var/lib/otelspend

# Only what `pip install .` reads: pyproject.toml (and the README it names) plus the
# package folders it maps (see [tool.setuptools] package-dir).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otelspend ./otelspend
COPY receiver ./receiver
COPY enrich ./enrich
COPY pipeline ./pipeline
COPY clickhouse ./clickhouse
COPY controls ./controls
COPY api ./api
COPY finance ./finance
RUN pip install . \
 && rm -rf /src

# In a container otelspend must listen on every interface; the embedded chDB store and the
# write-ahead log live in the volume. docker-compose.yml points the DSN at a ClickHouse server.
ENV OTELSPEND_OTLP_GRPC_ADDRESS=0.0.0.0:4317 \
    OTELSPEND_OTLP_HTTP_ADDRESS=0.0.0.0:4318 \
    OTELSPEND_API_ADDRESS=0.0.0.0:8000 \
    OTELSPEND_DATA_DIR=/var/lib/otelspend \
    OTELSPEND_CLICKHOUSE_DSN=chdb:///var/lib/otelspend/chdb

WORKDIR /var/lib/otelspend
VOLUME ["/var/lib/otelspend"]
USER otelspend
EXPOSE 4317 4318 8000

# Ready = the store answers and the pipeline accepts spans (GET /readyz answers 200, else 503).
# Plain Python so the slim image needs no curl; the port follows OTELSPEND_API_ADDRESS.
HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('OTELSPEND_API_ADDRESS', '0.0.0.0:8000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4)"]

CMD ["otelspend", "serve"]
