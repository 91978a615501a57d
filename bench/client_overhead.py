"""How much CPU each candidate load client spends per request: `python -m bench.client_overhead`.

The client shares the two cores with the server it measures, so it must be as light as possible.
Each client drives a stub server (a bare ASGI app answering a canned predictions body, so the
server is never the limit) at the same concurrency; the client's CPU time per request is compared:
bench/loadgen.py (raw asyncio HTTP/1.1), an httpx AsyncClient loop, and wrk with a Lua POST script
(when the Debian `wrk` package is installed). docs/performance.md records the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.contenders.launch import Server, free_port, python_module

BODY = json.dumps({"texts": ["a gripping, beautifully shot film"]})
STUB_MODULE = "bench.client_overhead"


async def stub_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with one canned prediction (health checks included)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"predictions":[{"label":"positive","score":0.9}]}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_loadgen(port: int, conc: int, requests: int, work: Path) -> dict[str, float]:
    bodies = work / "bodies.jsonl"
    bodies.write_text(BODY + "\n")
    out = work / "loadgen.json"
    cmd = python_module("bench.loadgen", "--port", str(port), "--bodies", str(bodies))
    cmd += ["--concurrency", str(conc), "--requests", str(requests), "--out", str(out)]
    subprocess.run(cmd, check=True)
    result = json.loads(out.read_text())
    return {"requests": requests, "cpu_ms_per_request": result["client_cpu_ms_per_request"]}


async def _httpx_loop(port: int, conc: int, requests: int) -> None:
    import httpx

    remaining = requests
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                response = await client.post("/predict", content=BODY, headers={"content-type": "application/json"})
                response.json()

        await asyncio.gather(*(worker() for _ in range(conc)))


def run_httpx(port: int, conc: int, requests: int) -> dict[str, float]:
    started = time.process_time()
    asyncio.run(_httpx_loop(port, conc, requests))
    return {"requests": requests, "cpu_ms_per_request": round(1000 * (time.process_time() - started) / requests, 3)}


def run_wrk(port: int, conc: int, seconds: int, work: Path) -> dict[str, float] | None:
    if shutil.which("wrk") is None:
        return None
    script = work / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    before = _children_cpu()
    done = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}/predict"],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = _children_cpu() - before
    requests = next(int(line.split()[0]) for line in done.stdout.splitlines() if "requests in" in line)
    return {"requests": requests, "cpu_ms_per_request": round(1000 * cpu / max(1, requests), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)  # the stub server itself
    args = parser.parse_args(argv)
    if args.serve is not None:
        import uvicorn

        uvicorn.run(stub_app, host="127.0.0.1", port=args.serve, log_level="warning", access_log=False)
        return 0
    with tempfile.TemporaryDirectory(prefix="client-overhead-") as tmp:
        work = Path(tmp)
        port = free_port()
        stub = Server("stub", python_module(STUB_MODULE, "--serve", str(port)), port, "/health", work / "stub.log")
        stub.start(60)
        try:
            results = {
                "loadgen (raw asyncio + uvloop)": run_loadgen(port, args.concurrency, args.requests, work),
                "httpx AsyncClient": run_httpx(port, args.concurrency, args.requests),
                "wrk + Lua": run_wrk(port, args.concurrency, 5, work),
            }
        finally:
            stub.stop()
    print(json.dumps({"concurrency": args.concurrency, "clients": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
