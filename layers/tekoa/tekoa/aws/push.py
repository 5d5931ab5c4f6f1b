"""Pushing to WebSocket clients through API Gateway's `@connections` management API.

`ConnectionPusher` is the port; `ManagementApiPusher` its adapter: `POST` (send) and `DELETE`
(close) on `<endpoint>/@connections/<id>`, signed with SigV4 for `execute-api` — the endpoint
is the WebSocket stage's callback URL in AWS and the `ws-gateway` part of `tekoa up` locally,
which serves the same API, so the same code runs in both.

A fan-out sends one request per connection (the management API has no batch call). boto3 spends
about a millisecond of CPU on each, which makes a thousand subscribers a second; this adapter
keeps a few HTTP/1.1 connections open, pipelines requests down each and drives them from one
event loop, with the requests signed by hand (the signing key is derived once a day). A
`410 Gone` means the client went away without API Gateway noticing in time: the caller forgets
the connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Protocol
from urllib.parse import quote, urlsplit

from tekoa.observability import logger

MAX_CONCURRENCY = 32
"""HTTP connections a fan-out uses at most (API Gateway accepts thousands of posts per second)."""
PIPELINE = 16
"""Requests written down a connection before their answers are read (HTTP/1.1 pipelining: one
write and one read for many requests instead of one each)."""


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
        self, method: str, host: str, path: str, payload_sha256: str, credentials: Credentials, amz_date: str
    ) -> dict[str, str]:
        """The headers that sign the request (`path` as sent, percent-encoded; `amz_date` as
        `amz_date(now)` gives it)."""
        return self.signed_headers(method, host, canonical_uri(path), payload_sha256, credentials, amz_date)

    def signed_headers(
        self,
        method: str,
        host: str,
        canonical_path: str,
        payload_sha256: str,
        credentials: Credentials,
        amz_date: str,
    ) -> dict[str, str]:
        """`headers` for a path already in canonical form (`canonical_uri`)."""
        date = amz_date[:8]
        headers = {"host": host, "x-amz-date": amz_date}
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                canonical_path,
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


def canonical_uri(path: str) -> str:
    """SigV4's canonical URI of a sent (percent-encoded) path: as botocore does for every service
    but S3, encoded once more (`%3D` becomes `%253D`)."""
    return quote(path, safe="/~")


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.~=-]+")
"""What API Gateway's connection ids are made of (base64 with its '=' padding)."""


def _quoted_id(connection_id: str) -> str:
    """`quote(connection_id, safe='')`, quickly for the ids API Gateway makes."""
    if _PLAIN_ID.fullmatch(connection_id):
        return connection_id.replace("=", "%3D")
    return quote(connection_id, safe="")


def amz_date(now: datetime) -> str:
    """The request time as SigV4 writes it."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's when installed (the local cloud has it: a third of the CPU per push), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


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
        self._connections_path = f"{parts.path}/@connections/"
        self._canonical_connections_path = canonical_uri(self._connections_path)
        self._credentials = credentials
        self._signer = SigV4Signer("execute-api", region)
        self._concurrency = max(1, concurrency)
        self._timeout_s = timeout_s
        self._idle: list[_Http] = []
        self._loop = _new_event_loop()
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
        signed = _Signed(
            method, data, hashlib.sha256(data).hexdigest(), self._credentials(), amz_date(datetime.now(UTC))
        )
        pending = iter(connection_ids)
        workers = min(self._concurrency, -(-len(connection_ids) // PIPELINE))
        await asyncio.gather(*(self._worker(signed, pending, result) for _ in range(workers)))

    async def _worker(self, signed: _Signed, pending: Iterator[str], result: PushResult) -> None:
        """Send windows of requests down one kept connection, pipelined (HTTP/1.1), until none are left."""
        http: _Http | None = None
        retry: list[str] = []
        retried = False
        try:
            while window := retry or list(islice(pending, PIPELINE)):
                retry = []
                if http is None:
                    http = await self._checkout()
                reused, http.used = http.used, True
                answered = 0
                try:
                    async with asyncio.timeout(self._timeout_s):
                        http.writer.write(
                            b"".join(self._request(signed, connection_id) for connection_id in window)
                        )
                        await http.writer.drain()
                        for connection_id in window:
                            status, keep = await self._response(http)
                            answered += 1
                            _record(result, connection_id, status)
                            if not keep:  # the server ends here: what it has not answered, it did not do
                                raise _Closed()
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, _Closed) as exc:
                    http.writer.close()
                    http = None
                    unanswered = window[answered:]
                    # A kept connection the server closed meanwhile (nothing answered): once more
                    # on a new one; likewise what a server closing on purpose left unanswered.
                    if isinstance(exc, _Closed) or (
                        reused and answered == 0 and not retried and not isinstance(exc, TimeoutError)
                    ):
                        retried = retried or not isinstance(exc, _Closed)
                        retry = unanswered
                        continue
                    logger.warning(
                        "@connections requests failed",
                        extra={
                            "method": signed.method,
                            "error": type(exc).__name__,
                            "requests": len(unanswered),
                        },
                    )
                    result.failed.extend(unanswered)
        finally:
            if http is not None:
                self._idle.append(http)

    def _request(self, signed: _Signed, connection_id: str) -> bytes:
        quoted = _quoted_id(connection_id)
        path = self._connections_path + quoted
        # The quoted id holds only unreserved characters and %XX: encoding it again touches '%' alone.
        headers = self._signer.signed_headers(
            signed.method,
            self._host_header,
            self._canonical_connections_path + quoted.replace("%", "%25"),
            signed.payload_sha256,
            signed.credentials,
            signed.amz_date,
        )
        lines = [f"{signed.method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
        if signed.data:
            lines += ["content-type: application/json", f"content-length: {len(signed.data)}"]
        else:
            lines.append("content-length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + signed.data

    async def _checkout(self) -> _Http:
        if self._idle:
            return self._idle.pop()
        context = ssl.create_default_context() if self._tls else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, ssl=context), self._timeout_s
        )
        return _Http(reader, writer)

    async def _response(self, http: _Http) -> tuple[int, bool]:
        """Read one response: (status, whether the connection stays open)."""
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


class _Closed(Exception):
    """The server said `connection: close`."""


@dataclass(frozen=True, slots=True)
class _Signed:
    """What every request of one fan-out shares."""

    method: str
    data: bytes
    payload_sha256: str
    credentials: Credentials
    amz_date: str


def _record(result: PushResult, connection_id: str, status: int) -> None:
    if 200 <= status < 300:
        result.delivered.append(connection_id)
    elif status == 410:
        result.gone.append(connection_id)
    else:
        result.failed.append(connection_id)
