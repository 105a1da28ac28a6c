"""A real webhook receiver for tests: an HTTP server on a loopback port, in a thread, that
keeps every request; and the Standard Webhooks check written out from the specification
(not the server's own helper), so a test proves what any receiver would verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class Receiver:
    """`url` takes POSTs; `requests` holds (lower-cased headers, body) of each. `statuses`
    are answered in turn to the first requests, 200 after them."""

    def __init__(self, port: int = 0, statuses: tuple[int, ...] = ()):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"not now")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Check a message as the Standard Webhooks specification says: the key is the base64
    after `whsec_`; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
    signature header holds space-separated `v1,<base64 HMAC-SHA256>` values; the timestamp
    is recent (unix seconds)."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split()
               if s.startswith("v1,")]
    assert any(hmac.compare_digest(expected, s) for s in offered), (headers, expected)
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 300


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
