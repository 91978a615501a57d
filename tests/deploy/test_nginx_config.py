"""The load balancer of docker-compose.scale.yml: nginx accepts its config, and it fits the stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY, REPO, compose_config, require_tool, run

NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"


@pytest.fixture(scope="module")
def nginx() -> str:
    run(["bash", REPO / "scripts/ci/install-system.sh", "nginx"], timeout=900)
    return require_tool("nginx", "Debian package nginx")


def test_nginx_accepts_the_config(nginx: str, tmp_path: Path) -> None:
    # -p: a private prefix (temp paths), -e: no write to the system error log.
    run([nginx, "-t", "-q", "-p", tmp_path, "-e", "stderr", "-c", NGINX_CONF])


def test_config_matches_the_scale_override(compose_standalone: str) -> None:
    conf = NGINX_CONF.read_text()
    lb = compose_config(compose_standalone, ("docker-compose.yml", "docker-compose.scale.yml"))["services"]["lb"]
    (mount,) = lb["volumes"]
    assert (Path(mount["source"]), mount["target"]) == (NGINX_CONF, "/etc/nginx/nginx.conf")
    listen = re.search(r"listen (\d+);", conf)
    assert listen and lb["ports"][0]["target"] == int(listen.group(1))
    health = re.search(r"location = (\S+) \{", conf)
    assert health and any(health.group(1) in part for part in lb["healthcheck"]["test"])
    # Docker's embedded DNS, re-resolved per request: `--scale api=N` needs no reload.
    assert "resolver 127.0.0.11" in conf
    assert re.search(r"set \$\w+ http://api:8000;", conf), "upstream must be the compose service `api`"
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in conf
