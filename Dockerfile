# The schoolnet collector as a container image (deploy/compose/compose.yaml builds it).
#
#   docker build -t schoolnet-collector:0.1.0 .
#
# The base is pinned by exact tag (Python 3.11, Debian 12 slim); its digest could not be
# read from a registry where this was written. The collector's own dependencies are pinned
# exactly in pyproject.toml (the `collector` extra). .dockerignore lets only pyproject.toml,
# README.md, agent/ and collector/ into the build: no store, token or virtual environment.
FROM python:3.11.12-slim-bookworm

# The store lives in the volume at /var/lib/schoolnet.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/schoolnet/venv/bin:$PATH \
    SCHOOLNET_DB=sqlite:////var/lib/schoolnet/collector.db

# DejaVu Sans for the evidence PDF (collector/incidents/pdf.py): names of schools and
# contacts with ł, ş or Ő print as letters, not as the boxes of the PDF's standard Helvetica.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# A system user of its own; its home is the state directory, owned by it (a named volume
# mounted there starts with this ownership).
RUN groupadd --system --gid 10001 schoolnet \
    && useradd --system --uid 10001 --gid schoolnet --home-dir /var/lib/schoolnet \
       --no-create-home --shell /usr/sbin/nologin schoolnet \
    && install -d -o schoolnet -g schoolnet -m 0750 /var/lib/schoolnet

WORKDIR /opt/schoolnet/src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY collector ./collector
# A virtual environment outside the source tree; the source is not needed after install.
RUN python -m venv /opt/schoolnet/venv \
    && pip install --no-compile ".[collector]" \
    && python -m compileall -q /opt/schoolnet/venv/lib \
    && rm -rf /opt/schoolnet/src

WORKDIR /var/lib/schoolnet
USER schoolnet:schoolnet
VOLUME ["/var/lib/schoolnet"]
EXPOSE 8470

# /healthz answers 200 when the app and its store answer; urlopen raises (exit 1) otherwise.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8470/healthz', timeout=5)"]

# `serve` brings the schema up to date (migrations) before it listens.
CMD ["schoolnet-collector", "serve", "--host", "0.0.0.0", "--port", "8470"]
