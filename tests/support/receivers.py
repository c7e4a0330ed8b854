"""Local notification receivers for the probe tests: a webhook (an HTTP server recording each
POST), a mailbox (aiosmtpd recording each message) and a silent receiver that accepts and
never answers; `Receivers` starts them and stops every one (the `receivers` fixture)."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.net import free_port


class Silent:
    """A receiver that hangs: it accepts connections and never says a word (no HTTP answer, no
    SMTP greeting) until closed. `accepted` counts the connections it took."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="silent-receiver", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            conn, _ = self._sock.accept()
            with self._lock:
                if self._closing:
                    conn.close()
                    return
                self._conns.append(conn)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._conns)

    def close(self) -> None:
        """Stop accepting (a last connection wakes the accept), drop every connection, free
        the port; idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
        for conn in self._conns:
            conn.close()
        self._sock.close()


@dataclass
class Webhook:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [r["json"]["alert"] for r in self.requests]


@dataclass
class Mailbox:
    port: int
    received: list[tuple[str, list[str], email.message.EmailMessage]] = field(default_factory=list)

    @property
    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for _, _, message in self.received]


class Receivers:
    """Starts receivers (optionally on a given port) and stops every one when done."""

    def __init__(self) -> None:
        self._stops: list[Callable[[], None]] = []

    def silent(self) -> Silent:
        receiver = Silent()
        self._stops.append(receiver.close)
        return receiver

    def webhook(self, port: int = 0) -> Webhook:
        hook = Webhook(port=port)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.requests.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(raw),
                    }
                )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        hook.port = int(server.server_address[1])

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            assert not thread.is_alive()

        self._stops.append(stop)
        return hook

    def smtp(self, port: int | None = None) -> Mailbox:
        box = Mailbox(port=port or free_port())

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(
                    envelope.original_content, policy=email.policy.default
                )
                assert isinstance(message, email.message.EmailMessage)
                box.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
                return "250 Message accepted for delivery"

        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=box.port,
            server_hostname="mail.example.test",
            ready_timeout=10,
        )
        controller.start()
        self._stops.append(controller.stop)
        return box

    def stop_all(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
