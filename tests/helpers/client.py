"""A lean asyncio HTTP/1.1 client for load tests: one kept-alive connection per simulated client.

httpx costs about a millisecond of CPU per request, which on a 2-core machine shared with the server
would make the client the bottleneck at 1,000 connections; this one only formats bytes and parses
the status line, headers and a Content-Length body. `raw_request` / `read_response` do the same on a
blocking socket, for tests that time exactly when bytes are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass
from typing import Any


class ConnectionDropped(Exception):
    """The server closed or reset the connection before a complete response."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    began: float
    ended: float

    @property
    def latency(self) -> float:
        return self.ended - self.began

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("POST", path, json.dumps(payload).encode(), headers)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        began = time.monotonic()
        try:
            if self._writer is None:
                await self.open()
            assert self._reader is not None and self._writer is not None
            self._writer.write(head.encode() + body)
            await self._writer.drain()
            status_line = await self._reader.readuntil(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            response_headers: dict[str, str] = {}
            while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
                key, _, value = line.decode("latin-1").partition(":")
                response_headers[key.strip().lower()] = value.strip()
            content = await self._reader.readexactly(int(response_headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            await self.close()
            raise ConnectionDropped(f"{type(exc).__name__}: {exc}") from exc
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        return Reply(status, response_headers, content, began, time.monotonic())


def raw_request(path: str, payload: Any, headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    """One HTTP/1.1 request with a JSON body, as bytes (keep-alive: HTTP/1.1's default)."""
    body = json.dumps(payload).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def read_response(conn: socket.socket) -> Reply:
    """One Content-Length response from a blocking socket; ConnectionDropped if the server closes or resets
    the connection first."""
    began = time.monotonic()
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionDropped("closed by the server without a response")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionDropped("closed mid-response")
            body += chunk
    except OSError as exc:  # ConnectionResetError: closed with our request unread
        raise ConnectionDropped(f"{type(exc).__name__}: {exc}") from exc
    return Reply(int(status_line.split(" ", 2)[1]), headers, body[:length], began, time.monotonic())
