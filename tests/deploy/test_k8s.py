"""Kustomize output of deploy/k8s, validated with kubernetes-validate --strict, and its semantics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.deploy import REPO, run, yaml_docs

K8S = REPO / "deploy" / "k8s"
KUSTOMIZATIONS = ["base", "overlays/cpu", "train"]
# The oldest Kubernetes still widely run and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]


@pytest.fixture(scope="module")
def rendered(kustomize: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("kustomize")
    paths = {}
    for name in KUSTOMIZATIONS:
        path = out / (name.replace("/", "-") + ".yaml")
        path.write_text(run([*kustomize, K8S / name]).stdout)
        paths[name] = path
    return paths


def objects(path: Path) -> dict[str, dict[str, Any]]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in yaml_docs(path.read_text())}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict(rendered: dict[str, Path], venv_bin: Path, version: str) -> None:
    proc = run([venv_bin / "kubernetes-validate", "--strict", "-k", version, *rendered.values()])
    assert "did not validate" not in proc.stdout + proc.stderr


def test_validator_rejects_unknown_fields(venv_bin: Path, tmp_path: Path) -> None:
    # Guards the test above: a typo'd field must fail strict validation.
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}], prots: []}\n")
    assert run([venv_bin / "kubernetes-validate", "--strict", bad], check=False).returncode != 0


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _config(objs: dict[str, dict[str, Any]]) -> dict[str, str]:
    (cm,) = [o for k, o in objs.items() if k.startswith("ConfigMap/sentiment-api-config")]
    return cm["data"]


def test_base_deployment(rendered: dict[str, Path]) -> None:
    objs = objects(rendered["base"])
    assert {"Deployment/sentiment-api", "Service/sentiment-api", "HorizontalPodAutoscaler/sentiment-api"} <= set(objs)
    assert {"PodDisruptionBudget/sentiment-api", "PersistentVolumeClaim/sentiment-models"} <= set(objs)
    deployment = objs["Deployment/sentiment-api"]
    pod = deployment["spec"]["template"]
    container = _container(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    # The ConfigMap reference carries kustomize's hash suffix, so config changes roll the pods.
    (env_from,) = container["envFrom"]
    config = _config(objs)
    assert env_from["configMapRef"]["name"] in {k.split("/", 1)[1] for k in objs if k.startswith("ConfigMap/")}
    assert config["SENTIMENT_DEVICE"] == "cuda"
    assert int(config["SENTIMENT_TORCH_THREADS"]) <= int(container["resources"]["requests"]["cpu"])
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"] == 8000


def test_grace_period_covers_pre_stop_and_drain(rendered: dict[str, Path]) -> None:
    objs = objects(rendered["base"])
    deployment = objs["Deployment/sentiment-api"]
    pre_stop = _container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(_config(objs)["SENTIMENT_DRAIN_TIMEOUT_S"])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(pre_stop[1]) + drain, "SIGKILL would cut the drain short"


def test_runs_as_the_image_user(rendered: dict[str, Path]) -> None:
    uid = int(re.search(r"ARG APP_UID=(\d+)", (REPO / "Dockerfile").read_text()).group(1))
    for name in ("base", "train"):
        for obj in objects(rendered[name]).values():
            if obj["kind"] not in {"Deployment", "Job"}:
                continue
            security = obj["spec"]["template"]["spec"]["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] == uid, obj["metadata"]["name"]


def test_service_hpa_and_pdb_select_the_pods(rendered: dict[str, Path]) -> None:
    objs = objects(rendered["base"])
    pod_labels = objs["Deployment/sentiment-api"]["spec"]["template"]["metadata"]["labels"]
    service = objs["Service/sentiment-api"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert objs["PodDisruptionBudget/sentiment-api"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = objs["HorizontalPodAutoscaler/sentiment-api"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sentiment-api"}
    assert hpa["minReplicas"] >= 2, "one replica would leave nothing serving during a rollout or drain"
    assert {m.get("pods", {}).get("metric", {}).get("name") for m in hpa["metrics"]} >= {"sentiment_queue_depth"}


def test_cpu_overlay_drops_gpu(rendered: dict[str, Path]) -> None:
    objs = objects(rendered["overlays/cpu"])
    container = _container(objs["Deployment/sentiment-api"])
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert "tolerations" not in objs["Deployment/sentiment-api"]["spec"]["template"]["spec"]
    assert _config(objs)["SENTIMENT_DEVICE"] == "cpu"


def test_training_job_uses_torchrun_on_the_models_claim(rendered: dict[str, Path]) -> None:
    job = objects(rendered["train"])["Job/sentiment-train"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"][0] == "torchrun" and "sentiment-train" in container["command"]
    nproc = next(int(a.split("=")[1]) for a in container["command"] if a.startswith("--nproc_per_node="))
    assert container["resources"]["limits"]["nvidia.com/gpu"] == nproc
    assert container["args"][:2] == ["--models-dir", "/models"]
    # The train image (Dockerfile target `train`): the api's image has no training stack.
    assert container["image"].rsplit(":", 1)[0] == "sentiment-service-train", container["image"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"sentiment-models"}
