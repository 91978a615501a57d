"""Static checks of the Dockerfile: hadolint, and the properties the deployment relies on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Stage:
    name: str
    parent: str  # the FROM image: another stage's name or ${BASE_IMAGE}
    body: list[tuple[str, str]]  # FROM included


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for name, args in instructions(text):
        if name == "FROM":
            image, *alias = args.split()
            result.append(Stage(alias[-1] if alias else str(len(result)), image, []))
        if result:
            result[-1].body.append((name, args))
    return result


def lineage(all_stages: list[Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built on, the stage first."""
    by_name = {s.name: s for s in all_stages}
    chain = [by_name[name]]
    while chain[-1].parent in by_name:
        chain.append(by_name[chain[-1].parent])
    return chain


def effective(chain: list[Stage]) -> list[tuple[str, str]]:
    """What an image built from this lineage inherits, in build order (the stage's own last)."""
    return [ins for stage in reversed(chain) for ins in stage.body]


@pytest.fixture(scope="module")
def all_stages() -> list[Stage]:
    return stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(all_stages: list[Stage]) -> list[tuple[str, str]]:
    """The default image (no --target): the api, with what it inherits from the runtime stage."""
    return effective(lineage(all_stages, all_stages[-1].name))


@pytest.fixture(scope="module")
def train_stage(all_stages: list[Stage]) -> list[tuple[str, str]]:
    return effective(lineage(all_stages, "train"))


def copied_from(image: list[tuple[str, str]], target: str) -> set[str]:
    """The stages whose files an image copies to `target`."""
    found = set()
    for name, args in image:
        if name == "COPY" and (m := re.search(r"--from=(\S+)\s.*\s(\S+)$", args)) and m.group(2).rstrip("/") == target:
            found.add(m.group(1))
    return found


def user_id(image: list[tuple[str, str]]) -> str:
    users = [args for name, args in image if name == "USER"]
    assert users, "the image must switch to a non-root user"
    arg_defaults = dict(a.split("=", 1) for name, a in image if name == "ARG" and "=" in a)
    return re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults[m.group(1)], users[-1]).split(":")[0]


def test_pip_helper_is_executable() -> None:
    # COPY keeps the mode: the build stages call it by name.
    helper = REPO / "deploy/docker/pip-install.sh"
    assert "deploy/docker/pip-install.sh /usr/local/bin/pip-install" in DOCKERFILE.read_text()
    assert helper.stat().st_mode & 0o111 == 0o111, f"{helper} must be executable (git mode 100755)"


def test_hadolint_clean(venv_bin: Path) -> None:
    # Every ignored rule sits inline next to its justification; the file must pass as it is.
    run([venv_bin / "hadolint", DOCKERFILE])


def test_base_image_is_a_build_argument_and_build_is_multi_stage(all_stages: list[Stage]) -> None:
    text = DOCKERFILE.read_text()
    # A `# syntax=` line makes BuildKit pull a frontend image: offline builds would fail.
    assert not re.match(r"#\s*syntax\s*=", text, re.IGNORECASE)
    parsed = instructions(text)
    assert parsed[0][0] == "ARG" and parsed[0][1].startswith("BASE_IMAGE="), "ARG BASE_IMAGE must precede FROM"
    assert len(all_stages) >= 2, "expected a multi-stage build"
    args = {a.split("=", 1)[0] for name, a in parsed if name == "ARG"}
    assert {"BASE_IMAGE", "WHEELHOUSE", "TORCH_SPEC", "TORCH_INDEX_URL"} <= args


@pytest.mark.parametrize("target", ["api", "train"])
def test_runtime_images_start_from_the_base_and_never_run_pip(all_stages: list[Stage], target: str) -> None:
    """Each image starts from the base image (directly or through stages that do), not from a build
    stage: the venv and the code arrive by COPY --from, so no wheelhouse, pip cache or build tree
    can end up in a layer. The api image is the default (last) stage."""
    assert all_stages[-1].name == "api", "the default (last) stage must be the api image"
    chain = lineage(all_stages, target)
    assert chain[-1].parent == "${BASE_IMAGE}", [s.name for s in chain]
    image = effective(chain)
    assert not [args for name, args in image if name == "RUN" and "pip" in args], "runtime stages must not run pip"
    assert not [args for name, args in image if name in {"COPY", "ADD"} and "WHEELHOUSE" in args]
    assert len(copied_from(image, "/opt/venv")) == 2, "the venv of a dependency stage, then the project over it"


def test_api_venv_has_no_training_stack(all_stages: list[Stage], final_stage: list[tuple[str, str]]) -> None:
    """The api image copies its venv from a dependency stage that installs only the `serve` extra
    (the image contract test checks the result: datasets, sklearn, ... fail to import)."""
    (deps,) = copied_from(final_stage, "/opt/venv") - {"app"}
    installs = [args for stage in lineage(all_stages, deps) for name, args in stage.body if name == "RUN"]
    extras = re.findall(r"--extras\s+(\S+)", " ".join(installs))
    assert extras == ["serve"], extras
    assert not [args for args in installs if "NODEPS_PACKAGES" in args], "the base model and corpus are for training"
    (train_deps,) = copied_from(effective(lineage(all_stages, "train")), "/opt/venv") - {"app"}
    train_installs = " ".join(a for s in lineage(all_stages, train_deps) for n, a in s.body if n == "RUN")
    assert {"serve", "train"} <= {e for x in re.findall(r"--extras\s+(\S+)", train_installs) for e in x.split(",")}


def test_final_stage_runs_the_server_as_non_root(final_stage: list[tuple[str, str]]) -> None:
    entrypoint = [args for name, args in final_stage if name == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoint] == [["sentiment-serve"]]
    uid = user_id(final_stage)
    assert uid.isdigit() and int(uid) != 0, f"USER must be numeric and not root (got {uid})"


def test_train_stage_runs_the_trainer_as_the_same_non_root_user(
    final_stage: list[tuple[str, str]], train_stage: list[tuple[str, str]]
) -> None:
    entrypoint = [json.loads(args) for name, args in train_stage if name == "ENTRYPOINT"]
    assert entrypoint[-1:] == [["sentiment-train"]]
    assert user_id(train_stage) == user_id(final_stage), "the models volume is shared: same uid"
    assert [json.loads(args) for name, args in train_stage if name == "VOLUME"] == [["/models"]]
    assert not [args for name, args in train_stage if name == "HEALTHCHECK"], "a training job has no /health"


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
