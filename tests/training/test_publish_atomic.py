"""Publishing under crashes and races, with real processes (the store is what the service trusts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from training.store import STAGING_PREFIX, ModelStore, verify_directory

# A publisher whose populate step writes part of a model, says so, then waits for a go-file.
_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from training.store import ModelStore

    models, ready, go = (Path(a) for a in sys.argv[1:4])

    def populate(staging: Path) -> None:
        (staging / "model.safetensors").write_bytes(b"weights" * 1000)
        ready.write_text(str(staging))
        while not go.exists():
            time.sleep(0.01)
        (staging / "config.json").write_text("{}")

    published = ModelStore(models).publish("sentiment", populate, {"labels": ["negative", "positive"]})
    print(published.version)
    """
)


def _start(models: Path, ready: Path, go: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(models), str(ready), str(go)],
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


def test_kill_mid_publish_leaves_no_version_and_next_publish_cleans_up(tmp_path: Path) -> None:
    models = tmp_path / "models"
    proc = _start(models, tmp_path / "ready", tmp_path / "go")
    try:
        _wait_for(tmp_path / "ready", proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    store = ModelStore(models)
    assert store.versions("sentiment") == []
    leftovers = list((models / "sentiment").glob(f"{STAGING_PREFIX}*"))
    assert [p.name for p in leftovers] == [Path((tmp_path / "ready").read_text()).name]

    published = store.publish(
        "sentiment", lambda d: (d / "config.json").write_text("{}"), {"labels": ["negative", "positive"]}
    )
    assert published.version == 1
    assert verify_directory(published.path, "sentiment", 1) == []
    assert not list((models / "sentiment").glob(f"{STAGING_PREFIX}*"))


def test_concurrent_publishes_get_distinct_versions(tmp_path: Path) -> None:
    models = tmp_path / "models"
    go = tmp_path / "go"
    procs = [_start(models, tmp_path / f"ready-{i}", go) for i in range(2)]
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
        assert verify_directory(store.version_dir("sentiment", version), "sentiment", version) == []
