"""A loopback fake of the Telegram Bot API (`POST /bot<token>/sendMessage`), which also takes
webhook POSTs on any other path, recording what it received.

A test points `telegram_api_url` at `url`, reads `messages` (token, chat id, text) and
`webhooks` (path, headers, body), and can make the next N requests fail (`fail_next`, answered
500 as Telegram does when it is down).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class TelegramMessage:
    token: str
    chat_id: str
    text: str


@dataclass(frozen=True)
class WebhookCall:
    path: str
    headers: dict[str, str]
    body: bytes


class FakeTelegram:
    def __init__(self) -> None:
        self.messages: list[TelegramMessage] = []
        self.webhooks: list[WebhookCall] = []
        self.failed = 0
        self._fail_next = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with fake._lock:
                    failing = fake._fail_next > 0
                    if failing:
                        fake._fail_next -= 1
                        fake.failed += 1
                if failing:
                    self._answer(
                        500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
                    )
                    return
                token, _, method = self.path.removeprefix("/bot").partition("/")
                if self.path.startswith("/bot") and method == "sendMessage":
                    sent = json.loads(body)
                    with fake._lock:
                        fake.messages.append(TelegramMessage(token, str(sent["chat_id"]), sent["text"]))
                    self._answer(200, {"ok": True, "result": {"message_id": len(fake.messages)}})
                    return
                with fake._lock:
                    fake.webhooks.append(
                        WebhookCall(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self._answer(200, {"ok": True})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._fail_next = count

    def wait_for_messages(self, count: int, timeout_s: float = 20.0) -> list[TelegramMessage]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} Telegram messages arrived"
            time.sleep(0.02)
        return list(self.messages)

    def __enter__(self) -> FakeTelegram:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
