"""`docker compose config` for every combination of the compose files, and what each must say."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.deploy import COMPOSE_BASE, COMPOSE_OVERRIDES, REPO, compose_config

COMBINATIONS = [
    (COMPOSE_BASE, *extra)
    for n in range(len(COMPOSE_OVERRIDES) + 1)
    for extra in itertools.combinations(COMPOSE_OVERRIDES, n)
]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda files: "+".join(f.split(".")[1] for f in files))
def config(request: pytest.FixtureRequest, compose_standalone: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    return request.param, compose_config(compose_standalone, request.param)


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []


def test_every_combination_is_valid_and_has_the_services(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    files, cfg = config
    expected = {"api", "train", "prometheus", "grafana"} | ({"lb"} if "docker-compose.scale.yml" in files else set())
    assert set(cfg["services"]) == expected


def test_api_and_train_build_their_own_images(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    """One Dockerfile, two targets: the api image has no training stack, the train image has it."""
    _, cfg = config
    api, train = cfg["services"]["api"], cfg["services"]["train"]
    assert (api["image"], api["build"]["target"]) == ("sentiment-service:latest", "api")
    assert (train["image"], train["build"]["target"]) == ("sentiment-service-train:latest", "train")
    assert api["build"]["args"] == train["build"]["args"], "both images come from the same base and wheelhouse"
    assert api["build"]["context"] == train["build"]["context"] == str(REPO)


def test_gpu_reservation_unless_cpu_override(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    files, cfg = config
    cpu = "docker-compose.cpu.yml" in files
    for name in ("api", "train"):
        devices = gpu_devices(cfg["services"][name])
        if cpu:
            assert devices == [], f"{name}: the CPU override must drop the GPU reservation"
        else:
            assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}], name
    assert cfg["services"]["api"]["environment"]["SENTIMENT_DEVICE"] == ("cpu" if cpu else "cuda")
    torch_index = cfg["services"]["api"]["build"]["args"]["TORCH_INDEX_URL"]
    assert ("whl/cpu" in torch_index) == cpu, "CPU hosts build with the CPU torch wheel"


def test_api_health_restart_limits_and_grace(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, cfg = config
    api = cfg["services"]["api"]
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert "curl" not in " ".join(api["healthcheck"]["test"])
    assert api["restart"] == "unless-stopped"
    assert api["stop_signal"] == "SIGTERM"
    assert _seconds(api["stop_grace_period"]) > float(api["environment"]["SENTIMENT_DRAIN_TIMEOUT_S"])
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and int(limits["memory"]) > 0
    assert int(api["environment"]["SENTIMENT_TORCH_THREADS"]) <= float(limits["cpus"])
    assert "SENTIMENT_API_KEY" in api["environment"] and api["environment"]["SENTIMENT_API_KEY"] is None, (
        "the API key is passed through from the host only when set"
    )


def test_models_mounted_read_only_for_api_and_writable_for_train(
    config: tuple[tuple[str, ...], dict[str, Any]],
) -> None:
    _, cfg = config
    (api_models,) = [v for v in cfg["services"]["api"]["volumes"] if v["target"] == "/models"]
    (train_models,) = [v for v in cfg["services"]["train"]["volumes"] if v["target"] == "/models"]
    assert api_models.get("read_only") is True
    assert not train_models.get("read_only")
    assert api_models["source"] == train_models["source"] == "models"
    train = cfg["services"]["train"]
    assert train["profiles"] == ["train"] and train["restart"] == "no"
    assert train["entrypoint"][:3] == ["sentiment-train", "--models-dir", "/models"]


def test_ports_and_networking_per_override(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    files, cfg = config
    api = cfg["services"]["api"]
    if "docker-compose.hostnet.yml" in files:
        assert api["network_mode"] == cfg["services"]["train"]["network_mode"] == "host"
        assert api["environment"]["SENTIMENT_HOST"] == "127.0.0.1", "host networking listens on loopback by default"
    if "docker-compose.scale.yml" in files:
        assert api["deploy"]["replicas"] == 2
        assert cfg["services"]["lb"]["ports"][0]["host_ip"] == "127.0.0.1"
        assert cfg["services"]["lb"]["depends_on"]["api"]["condition"] == "service_healthy"
    if {"docker-compose.hostnet.yml", "docker-compose.scale.yml"} & set(files):
        assert not api.get("ports"), "replicas behind the LB (or on the host network) publish no port"
    else:
        (port,) = api["ports"]
        assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)


def test_bind_mounts_exist_and_point_at_deploy(config: tuple[tuple[str, ...], dict[str, Any]]) -> None:
    _, cfg = config
    binds = [(name, v) for name, s in cfg["services"].items() for v in s.get("volumes", []) if v["type"] == "bind"]
    assert binds
    for name, volume in binds:
        source = Path(volume["source"])
        assert source.exists(), f"{name}: bind source {source} does not exist"
        assert REPO / "deploy" in source.parents, f"{name}: {source} is outside deploy/"
        assert volume.get("read_only") is True, f"{name}: {source} should be mounted read-only"


def test_variables_reach_the_services(compose_standalone: str) -> None:
    """The knobs docs/deployment.md lists really change the rendered configuration."""
    env = {
        "MODELS": "/srv/models",
        "SENTIMENT_IMAGE": "registry.example/sentiment:1.2",
        "SENTIMENT_TRAIN_IMAGE": "registry.example/sentiment-train:1.2",
        "SENTIMENT_PORT": "8080",
        "API_PUBLISH_PORT": "9000",
        "API_CPUS": "2",
        "API_REPLICAS": "3",
        "SENTIMENT_API_KEY": "s3cret",
    }
    cfg = compose_config(compose_standalone, (COMPOSE_BASE,), env)
    api = cfg["services"]["api"]
    assert api["image"] == "registry.example/sentiment:1.2"
    assert cfg["services"]["train"]["image"] == "registry.example/sentiment-train:1.2"
    assert api["volumes"][0]["type"] == "bind" and api["volumes"][0]["source"] == "/srv/models"
    assert (api["ports"][0]["published"], api["ports"][0]["target"]) == ("9000", 8080)
    assert api["environment"]["SENTIMENT_PORT"] == "8080"
    assert api["environment"]["SENTIMENT_API_KEY"] == "s3cret"
    assert float(api["deploy"]["resources"]["limits"]["cpus"]) == 2
    scaled = compose_config(compose_standalone, (COMPOSE_BASE, "docker-compose.scale.yml"), env)
    assert scaled["services"]["api"]["deploy"]["replicas"] == 3


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0.0, ""
    for char in duration:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total
