"""Static checks of the Dockerfile: hadolint, and the properties the deployment relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.config import Settings
from tests.helpers.deploy import REPO, run

DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


@pytest.fixture(scope="module")
def final_stage() -> list[tuple[str, str]]:
    parsed = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (name, _) in enumerate(parsed) if name == "FROM")
    return parsed[last_from:]


def test_hadolint_clean(venv_bin: Path) -> None:
    # Every ignored rule sits inline next to its justification; the file must pass as it is.
    run([venv_bin / "hadolint", DOCKERFILE])


def test_base_image_is_a_build_argument_and_build_is_multi_stage() -> None:
    text = DOCKERFILE.read_text()
    # A `# syntax=` line makes BuildKit pull a frontend image: offline builds would fail.
    assert not re.match(r"#\s*syntax\s*=", text, re.IGNORECASE)
    parsed = instructions(text)
    assert parsed[0][0] == "ARG" and parsed[0][1].startswith("BASE_IMAGE="), "ARG BASE_IMAGE must precede FROM"
    froms = [args for name, args in parsed if name == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    assert froms[-1].startswith("${BASE_IMAGE}"), "the final stage must start from the base, not a build stage"
    args = {a.split("=", 1)[0] for name, a in parsed if name == "ARG"}
    assert {"BASE_IMAGE", "WHEELHOUSE", "TORCH_SPEC", "TORCH_INDEX_URL"} <= args


def test_final_stage_runs_the_server_as_non_root(final_stage: list[tuple[str, str]]) -> None:
    entrypoint = [args for name, args in final_stage if name == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoint] == [["sentiment-serve"]]
    users = [args for name, args in final_stage if name == "USER"]
    assert users, "the final stage must switch to a non-root user"
    arg_defaults = dict(a.split("=", 1) for name, a in final_stage if name == "ARG" and "=" in a)
    uid = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults[m.group(1)], users[-1]).split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be numeric and not root (got {users[-1]})"


def test_final_stage_health_stop_signal_env_and_models_volume(final_stage: list[tuple[str, str]]) -> None:
    health = [args for name, args in final_stage if name == "HEALTHCHECK"]
    assert len(health) == 1 and "/health" in health[0]
    assert "curl" not in health[0] and "wget" not in health[0], "the image ships neither curl nor wget"
    assert [args for name, args in final_stage if name == "STOPSIGNAL"] == ["SIGTERM"]
    env = " ".join(args for name, args in final_stage if name == "ENV")
    assert "SENTIMENT_HOST=0.0.0.0" in env and "SENTIMENT_MODELS_DIR=/models" in env
    assert [json.loads(args) for name, args in final_stage if name == "VOLUME"] == [["/models"]]


def test_models_are_never_copied_into_the_image() -> None:
    parsed = instructions(DOCKERFILE.read_text())
    copies = [args for name, args in parsed if name in {"COPY", "ADD"}]
    assert not [c for c in copies if re.search(r"(^|\s)\.?/?models\b", c)], copies
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in "#"]
    # The ignore file is an allow-list: everything excluded, then only code and wheels let back in.
    assert ignore[0] == "*"
    assert not [line for line in ignore if line.startswith("!") and "models" in line]


def test_drain_fits_in_the_stop_grace_periods() -> None:
    """The service's default drain must finish before compose or Kubernetes send SIGKILL."""
    import yaml

    drain = Settings.model_fields["drain_timeout_s"].default
    compose = (REPO / "docker-compose.yml").read_text()
    grace = re.search(r"stop_grace_period: \$\{API_STOP_GRACE:-(\d+)s\}", compose)
    assert grace and int(grace.group(1)) > drain, "compose stop_grace_period must exceed the drain timeout"
    deployment = yaml.safe_load((REPO / "deploy/k8s/base/deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain
