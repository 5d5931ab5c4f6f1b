"""Pushing to WebSocket clients through API Gateway's `@connections` management API.

`ConnectionPusher` is the port; `ManagementApiPusher` its adapter: `POST` (send) and `DELETE`
(close) on `<endpoint>/@connections/<id>`, signed with SigV4 for `execute-api` — the endpoint
is the WebSocket stage's callback URL in AWS and the `ws-gateway` part of `tekoa up` locally,
which serves the same API, so the same code runs in both.

A fan-out sends one request per connection (the management API has no batch call). boto3 spends
about a millisecond of CPU on each, which makes a thousand subscribers a second; this adapter
keeps a few HTTP/1.1 connections open and drives them from one event loop, with the request
signed by hand (the signing key is derived once a day). A `410 Gone` means the client went
away without API Gateway noticing in time: the caller forgets the connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

from tekoa.observability import logger

MAX_CONCURRENCY = 32
"""HTTP connections a fan-out uses at most (API Gateway accepts thousands of posts per second)."""


@dataclass(slots=True)
class PushResult:
    """What became of each connection: delivered, gone (410), or failed (anything else)."""

    delivered: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class ConnectionPusher(Protocol):
    """Sends to and closes WebSocket connections."""

    def send(self, connection_ids: Sequence[str], data: bytes) -> PushResult:
        """Send `data` (one text message) to each connection."""
        ...

    def close(self, connection_ids: Sequence[str]) -> PushResult:
        """Disconnect each connection."""
        ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """AWS credentials to sign with (moto and the local gateway accept any)."""

    access_key: str
    secret_key: str
    token: str | None = None


class SigV4Signer:
    """AWS Signature Version 4 for one service and region, for requests without a query string."""

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self._keys: dict[tuple[str, str], bytes] = {}

    def _signing_key(self, secret_key: str, date: str) -> bytes:
        key = self._keys.get((secret_key, date))
        if key is None:
            key = ("AWS4" + secret_key).encode()
            for part in (date, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret_key, date): key}
        return key

    def headers(
        self, method: str, host: str, path: str, payload_sha256: str, credentials: Credentials, now: datetime
    ) -> dict[str, str]:
        """The headers that sign the request (`path` as sent, percent-encoded).

        As botocore does for every service but S3, the canonical URI is the sent path encoded
        once more (`%3D` becomes `%253D`).
        """
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        headers = {"host": host, "x-amz-date": amz_date}
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/~"),
                "",
                "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                signed,
                payload_sha256,
            ]
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(credentials.secret_key, date), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers


@dataclass(slots=True)
class _Http:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False


class ManagementApiPusher:
    """`ConnectionPusher` on an `@connections` endpoint (see the module docstring).

    Thread-safe: calls are serialised on the adapter's own event loop, which keeps its HTTP
    connections open between calls (between invocations of a warm Lambda).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Callable[[], Credentials],
        *,
        concurrency: int = MAX_CONCURRENCY,
        timeout_s: float = 5.0,
    ) -> None:
        parts = urlsplit(endpoint_url.rstrip("/"))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc
        self._base_path = parts.path
        self._credentials = credentials
        self._signer = SigV4Signer("execute-api", region)
        self._concurrency = max(1, concurrency)
        self._timeout_s = timeout_s
        self._idle: list[_Http] = []
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    @classmethod
    def from_boto3(
        cls, endpoint_url: str, region: str, *, concurrency: int = MAX_CONCURRENCY, timeout_s: float = 5.0
    ) -> ManagementApiPusher:
        """The adapter signing with the credentials boto3 finds (Lambda's role, or local ones)."""
        import boto3

        session = boto3.session.Session()

        def credentials() -> Credentials:
            found = session.get_credentials()
            if found is None:
                raise RuntimeError("no AWS credentials to sign @connections requests with")
            frozen = found.get_frozen_credentials()
            return Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)

        return cls(endpoint_url, region, credentials, concurrency=concurrency, timeout_s=timeout_s)

    def send(self, connection_ids: Sequence[str], data: bytes) -> PushResult:
        return self._run("POST", connection_ids, data)

    def close(self, connection_ids: Sequence[str]) -> PushResult:
        return self._run("DELETE", connection_ids, b"")

    def shutdown(self) -> None:
        """Close the kept connections and the event loop."""
        with self._lock:
            for http in self._idle:
                http.writer.close()
            self._idle.clear()
            self._loop.close()

    # -- one fan-out ----------------------------------------------------------------------------

    def _run(self, method: str, connection_ids: Sequence[str], data: bytes) -> PushResult:
        result = PushResult()
        if not connection_ids:
            return result
        with self._lock:
            self._loop.run_until_complete(self._all(method, connection_ids, data, result))
        if result.failed:
            logger.warning(
                "connections not reached",
                extra={"method": method, "failed": len(result.failed), "gone": len(result.gone)},
            )
        return result

    async def _all(self, method: str, connection_ids: Sequence[str], data: bytes, result: PushResult) -> None:
        payload_sha256 = hashlib.sha256(data).hexdigest()
        credentials = self._credentials()
        now = datetime.now(UTC)
        pending = iter(connection_ids)
        workers = min(self._concurrency, len(connection_ids))
        await asyncio.gather(
            *(
                self._worker(method, pending, data, payload_sha256, credentials, now, result)
                for _ in range(workers)
            )
        )

    async def _worker(
        self,
        method: str,
        pending: Iterator[str],
        data: bytes,
        payload_sha256: str,
        credentials: Credentials,
        now: datetime,
        result: PushResult,
    ) -> None:
        http: _Http | None = None
        try:
            for connection_id in pending:
                path = f"{self._base_path}/@connections/{quote(connection_id, safe='')}"
                headers = self._signer.headers(
                    method, self._host_header, path, payload_sha256, credentials, now
                )
                request = self._request(method, path, headers, data)
                status: int | None = None
                for attempt in range(2):
                    if http is None:
                        http = await self._checkout()
                    reused = http.used
                    try:
                        status, keep = await asyncio.wait_for(self._exchange(http, request), self._timeout_s)
                    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        http.writer.close()
                        http = None
                        # A kept connection the server closed meanwhile: once more on a new one.
                        if reused and attempt == 0 and not isinstance(exc, asyncio.TimeoutError):
                            continue
                        logger.warning(
                            "@connections request failed",
                            extra={"method": method, "error": type(exc).__name__},
                        )
                        break
                    if not keep:
                        http.writer.close()
                        http = None
                    break
                if status is not None and 200 <= status < 300:
                    result.delivered.append(connection_id)
                elif status == 410:
                    result.gone.append(connection_id)
                else:
                    result.failed.append(connection_id)
        finally:
            if http is not None:
                self._idle.append(http)

    def _request(self, method: str, path: str, headers: dict[str, str], data: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
        if data:
            lines += ["content-type: application/json", f"content-length: {len(data)}"]
        else:
            lines.append("content-length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    async def _checkout(self) -> _Http:
        if self._idle:
            return self._idle.pop()
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, ssl=context), self._timeout_s
        )
        return _Http(reader, writer)

    async def _exchange(self, http: _Http, request: bytes) -> tuple[int, bool]:
        """Send one request and read its response: (status, whether the connection stays open)."""
        http.used = True
        http.writer.write(request)
        await http.writer.drain()
        head = await http.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await http.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await http.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await http.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers.get("connection", "").lower() != "close"
