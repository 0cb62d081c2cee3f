# Fieldbook: docker build -t fieldbook . && docker run -p 8000:8000 -v fieldbook-data:/data fieldbook
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY storage ./storage
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/fieldbook fieldbook \
    && mkdir -p /data && chown fieldbook:fieldbook /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic ./alembic
COPY frontend ./frontend
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FIELDBOOK_DATA_DIR=/data \
    FIELDBOOK_MIGRATIONS_DIR=/app/alembic \
    FIELDBOOK_FRONTEND_DIR=/app/frontend
USER fieldbook
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["fieldbook", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
