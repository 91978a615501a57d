"""The load balancer of docker-compose.scale.yml: nginx accepts its config, and it fits the stack."""

from __future__ import annotations

import http.client
import http.server
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY, REPO, compose_config, require_tool, run
from tests.helpers.net import free_port

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


def test_metrics_are_blocked_and_everything_else_is_proxied(nginx: str, tmp_path: Path) -> None:
    """The real config in a real nginx on loopback, in front of a stub api that echoes the path."""

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"api saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    conf = NGINX_CONF.read_text()
    for old, new in [
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;"),
        ("http://api:8000;", f"http://127.0.0.1:{upstream.server_address[1]};"),
    ]:
        assert old in conf
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf)
    cmd = [nginx, "-p", str(tmp_path), "-e", "stderr", "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def get(path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.putrequest("GET", path, skip_accept_encoding=True)  # the path goes out exactly as written
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode()

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert get("/lb-health") == (200, "ok\n")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
                time.sleep(0.05)
        for path in ("/metrics", "/metrics?format=x", "/metrics/", "//metrics", "/./metrics", "/%6Detrics"):
            status, body = get(path)
            assert status == 403 and '"error_type": "forbidden"' in body, (path, status, body)
        for path in ("/predict", "/health/ready", "/v1/models", "/docs", "/"):
            assert get(path) == (200, f"api saw {path}"), path
    finally:
        proc.terminate()
        proc.wait(10)
        upstream.shutdown()
