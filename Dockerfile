# syntax=docker/dockerfile:1
# A small image of the app: gunicorn serving app:create_app() with deploy/gunicorn.conf.py,
# as an unprivileged user. docker-compose.yml builds and runs it (docs/deploy.md).
# tests/test_compose.py checks what this file claims by reading it: this project's machines
# have no Docker engine to build it.

# ---- build: the dependencies in a virtual environment, without pip's cache -------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt constraints.txt /tmp/
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt

# ---- run: the virtual environment and the app's own files, nothing else ----------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 genmb \
 && useradd --system --uid 10001 --gid genmb --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin genmb
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app.py cli.py config.py errors.py extensions.py http_names.py logs.py metrics.py openapi.py ./
COPY blueprints/ blueprints/
COPY mcp_server/ mcp_server/
COPY schemas/ schemas/
COPY security/ security/
COPY services/ services/
COPY store/ store/
COPY static/ static/
COPY templates/ templates/
COPY deploy/__init__.py deploy/access_log.py deploy/gunicorn.conf.py deploy/metrics_listener.py deploy/
# Compiled once here, as root: the app's files stay read-only to the user that runs it.
RUN python -m compileall -q /app
USER genmb
EXPOSE 8000
# Settings come from the environment (docker-compose.yml, .env): WORKERS, REDIS_URL, ...
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "app:create_app()"]
