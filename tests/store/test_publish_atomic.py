"""Publishing under crashes and races, with real processes (the store is what the service trusts)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store.manifest import MANIFEST
from store.model_store import STAGING_PREFIX, ModelStore
from store.servable import version_problems

# A publisher whose populate step copies part of a servable model, says so, then waits for a go-file.
_PUBLISHER = textwrap.dedent(
    """
    import shutil, sys, time
    from pathlib import Path
    from store.model_store import ModelStore

    models, template, ready, go = (Path(a) for a in sys.argv[1:5])

    def populate(staging: Path) -> None:
        shutil.copy(template / "model.safetensors", staging)
        ready.write_text(str(staging))
        while not go.exists():
            time.sleep(0.01)
        for path in template.iterdir():
            if not (staging / path.name).exists():
                shutil.copy(path, staging)

    published = ModelStore(models).publish("sentiment", populate, {"labels": ["negative", "positive"]})
    print(published.version)
    """
)


@pytest.fixture
def template(publish_tiny: Callable[..., Path], tmp_path: Path) -> Path:
    """The files of a servable version, without its manifest: what a populate step writes."""
    folder = tmp_path / "template"
    shutil.copytree(publish_tiny(models_dir=tmp_path / "template-store"), folder)
    (folder / MANIFEST).unlink()
    return folder


def copy_into(template: Path) -> Callable[[Path], None]:
    return lambda staging: shutil.copytree(template, staging, dirs_exist_ok=True)


def _start(models: Path, template: Path, ready: Path, go: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(models), str(template), str(ready), str(go)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "publisher exited early"
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.01)


def test_kill_mid_publish_leaves_no_version_and_next_publish_cleans_up(tmp_path: Path, template: Path) -> None:
    models = tmp_path / "models"
    proc = _start(models, template, tmp_path / "ready", tmp_path / "go")
    try:
        _wait_for(tmp_path / "ready", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    store = ModelStore(models)
    assert store.versions("sentiment") == []
    leftovers = list((models / "sentiment").glob(f"{STAGING_PREFIX}*"))
    assert [p.name for p in leftovers] == [Path((tmp_path / "ready").read_text()).name]

    published = store.publish("sentiment", copy_into(template), {"labels": ["negative", "positive"]})
    assert published.version == 1
    assert version_problems(published.path, "sentiment", 1) == []
    assert not list((models / "sentiment").glob(f"{STAGING_PREFIX}*"))


def test_concurrent_publishes_get_distinct_versions(tmp_path: Path, template: Path) -> None:
    models = tmp_path / "models"
    go = tmp_path / "go"
    procs = [_start(models, template, tmp_path / f"ready-{i}", go) for i in range(2)]
    try:
        for i, proc in enumerate(procs):
            _wait_for(tmp_path / f"ready-{i}", proc)
        go.write_text("go")  # both are mid-populate: release them together
        versions = sorted(int(proc.communicate(timeout=60)[0]) for proc in procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert versions == [1, 2]
    store = ModelStore(models)
    assert store.versions("sentiment") == [1, 2]
    for version in versions:
        assert version_problems(store.version_dir("sentiment", version), "sentiment", version) == []
