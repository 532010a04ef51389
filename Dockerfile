# syntax=docker/dockerfile:1
# One image for every rtplot service; compose picks the service with its command.

# --- build: a virtualenv with rtplot and its pinned dependencies -------------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/rtplot
COPY pyproject.toml constraints.txt ./
# The dependencies first, in a layer of their own: a change to rtplot's code rebuilds
# only the small layer below. constraints.txt pins every transitive dependency (the
# lock CI tests against).
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > requirements.txt \
 && /opt/rtplot/bin/pip install -c constraints.txt -r requirements.txt
COPY README.md ./
COPY common ./common
COPY fetcher ./fetcher
COPY renderer ./renderer
COPY gateway ./gateway
COPY stream ./stream
COPY rtplot ./rtplot
RUN /opt/rtplot/bin/pip install --no-deps -c constraints.txt .

# --- run: the virtualenv, a non-root user, nothing else ----------------------------
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="rtplot" \
      org.opencontainers.image.description="Live stock charts over a Redis pipeline"
ENV PATH=/opt/rtplot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RTPLOT_HOST=0.0.0.0 \
    RTPLOT_METRICS_HOST=0.0.0.0 \
    RTPLOT_LOG_JSON=true
COPY --from=build /opt/rtplot /opt/rtplot
RUN groupadd --system --gid 10001 rtplot \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin rtplot
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 9101 9102 9103
# The gateway's health by default; compose gives each service its own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["rtplot", "healthcheck", "http://127.0.0.1:8000/healthz"]
CMD ["rtplot", "gateway"]
