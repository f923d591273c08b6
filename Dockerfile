# Tollgate image: installs exactly the hashed lock file, runs as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY . .
RUN useradd --system --uid 10001 tollgate && mkdir -p /app/var/spool && chown -R tollgate /app
USER tollgate
EXPOSE 8000
# The production server, as `make serve` runs it (gateway/server.py); WORKERS defaults to 2.
# The metrics directory is the server's only: the Celery worker, from the same image, has none.
ENV HOST=0.0.0.0 PORT=8000
CMD ["env", "PROMETHEUS_MULTIPROC_DIR=/app/var/prometheus", "python", "-m", "gateway.server"]
