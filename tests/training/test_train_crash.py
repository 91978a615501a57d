"""kill -9 at random moments of real `sentiment-train` runs: nothing partial is ever published,
`--resume` continues from the last complete checkpoint, and concurrent trainings get distinct versions.

Complements tests/training/test_train_cli.py (one kill right after a checkpoint, then resume) and
tests/training/test_publish_atomic.py (kill inside a scripted publish; racing publishers): here the
kills land at random points of the real run and of its real publish (plots, model card, weights).
Set CRASH_SEED to replay a failure.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store.model_store import STAGING_PREFIX, ModelStore
from store.servable import version_problems
from tests.helpers.data import tiny_train_args

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def start_training(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"training exited before {what}: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


def assert_store_sound(models: Path, context: str) -> list[int]:
    """Every listed version verifies; returns them."""
    store = ModelStore(models)
    versions = store.versions("sentiment")
    for version in versions:
        problems = version_problems(store.version_dir("sentiment", version), "sentiment", version)
        assert problems == [], f"{context}: version {version} is published but broken: {problems}"
    return versions


def test_kill_9_during_training_and_publish_then_resume_and_race(
    data_file: Callable[..., Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRASH_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    context = f"CRASH_SEED={seed}"
    models, run_dir = tmp_path / "models", tmp_path / "run"
    argv = tiny_train_args(data_file(), tiny_base_model, tmp_path, "--eval-steps", "4")

    # 1. Killed at a random moment while training (after at least one checkpoint).
    proc = start_training([*argv, "--max-steps", "400"])
    try:
        wait_until(lambda: any(run_dir.glob("checkpoint-*/trainer_state.json")), proc, "a checkpoint")
        time.sleep(rng.uniform(0, 1.0))
    finally:
        kill(proc)
    assert assert_store_sound(models, context) == [], context

    # 2. Resumed, then killed at a random moment while publishing.
    proc = start_training([*argv, "--resume", "--max-steps", "24"])
    name_dir = models / "sentiment"
    try:
        wait_until(lambda: any(name_dir.glob(f"{STAGING_PREFIX}*")), proc, "the publish to begin")
        time.sleep(rng.uniform(0, 0.5))
    finally:
        kill(proc)
    published_before = assert_store_sound(models, context)
    assert published_before in ([], [1]), context  # nothing, or one whole version (the rename is atomic)

    # 3. Resume again while a second, independent training publishes into the same store.
    steps = [int(p.parent.name.split("-")[1]) for p in run_dir.glob("checkpoint-*/trainer_state.json")]
    if not steps:
        # The kill came after the publish had finished and removed the run's checkpoints: that run is
        # complete, so its version must be whole, and --resume starts afresh.
        assert published_before == [1], context
    last_checkpoint = max(steps, default=None)
    resumed = start_training([*argv, "--resume", "--max-steps", "24"])
    other_args = tiny_train_args(data_file("other.csv"), tiny_base_model, tmp_path / "other", "--eval-steps", "4")
    other = start_training([*other_args, "--models-dir", str(models), "--max-steps", "8"])
    outputs = [p.communicate(timeout=300) for p in (resumed, other)]
    for p, (_, err) in zip((resumed, other), outputs, strict=True):
        assert p.returncode == 0, f"{context}: {err[-2000:]}"
    paths = [Path(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert paths[0] != paths[1], context
    versions = assert_store_sound(models, context)
    assert versions == list(range(1, len(published_before) + 3)), (context, versions)
    assert not list(name_dir.glob(f"{STAGING_PREFIX}*")), f"{context}: a killed publish left its staging folder"

    manifest = json.loads((paths[0] / "manifest.json").read_text())
    resumed_from = manifest["training"]["resumed_from"]
    if last_checkpoint is None:
        assert resumed_from is None and manifest["training"]["global_step"] == 24, context
        return
    assert resumed_from is not None and Path(resumed_from) == run_dir / f"checkpoint-{last_checkpoint}", context
    # The first run may have got past step 24 before it was killed: then there is nothing left to train.
    assert manifest["training"]["global_step"] == max(24, last_checkpoint), context
