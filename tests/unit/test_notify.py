"""shared.ops.alerts: alert notifications delivered for real on loopback.

A `http.server` in a thread receives the webhook, an aiosmtpd server receives the email (plain,
with AUTH, and with STARTTLS against a throwaway CA that `SSL_CERT_FILE` makes trusted, so the
client's default certificate and hostname checks run unchanged). Failures (an HTTP 500, a closed
port, a server that never answers, a wrong password) make `deliver` return False without raising,
within the configured timeouts, and never put a secret in a log record.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.ops.alerts import Notification, Notifier, NotifyConfig, email_message, slack_payload
from tests.support.net import free_port

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "smtp-pa55word-THAT-MUST-NOT-LEAK"
WEBHOOK_TOKEN = "T000/B000/WEBHOOKTOKENMUSTNOTLEAK"
SENDER = "docflow@example.test"
RECIPIENTS = ("ops@example.test", "oncall@example.test")


def _notification(**overrides: Any) -> Notification:
    values: dict[str, Any] = {
        "alert_id": 42,
        "service_name": "database",
        "alert_type": "service_down",
        "status": "active",
        "message": "database unreachable: connection refused",
        "kind": "opened",
        "created_at": "2025-01-02T03:04:05+00:00",
        "details": {"latency_ms": 5003, "consecutive_failures": 3},
    }
    values.update(overrides)
    return Notification(**values)


@pytest.fixture(autouse=True)
def no_stray_threads() -> Iterator[None]:
    """Every server a test starts is stopped, its threads included."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (stray := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stray, f"threads left running: {stray}"


# --- a webhook receiver ----------------------------------------------------------------------


@dataclass
class WebhookServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    state = WebhookServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            state.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "json": json.loads(raw),
                }
            )
            body = b"ok" if state.status < 300 else b"server error"
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/{WEBHOOK_TOKEN}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


# --- an SMTP receiver ------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    handler: RecordingHandler
    logins: list[tuple[str, str, bool]]  # (mechanism, username, accepted)

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def _authenticator(logins: list[tuple[str, str, bool]]) -> Callable[..., AuthResult]:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        logins.append((mechanism, auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    return authenticate


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """A factory: `smtp_server(auth=..., tls_context=..., auth_require_tls=...)`."""
    controllers: list[Controller] = []

    def start(
        *,
        auth: bool = False,
        tls_context: ssl.SSLContext | None = None,
        auth_require_tls: bool = True,
    ) -> SmtpServer:
        handler = RecordingHandler()
        logins: list[tuple[str, str, bool]] = []
        port = free_port()
        kwargs: dict[str, Any] = {}
        if auth:
            kwargs.update(
                authenticator=_authenticator(logins),
                auth_required=True,
                auth_require_tls=auth_require_tls,
            )
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            server_hostname="mail.example.test",
            ready_timeout=10,
            **kwargs,
        )
        controller.start()
        controllers.append(controller)
        return SmtpServer(port=port, handler=handler, logins=logins)

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()


# --- a throwaway CA and a certificate for 127.0.0.1 ------------------------------------------


@pytest.fixture
def tls_server_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context whose certificate (for IP 127.0.0.1) the client's default context
    trusts: the CA goes into SSL_CERT_FILE, which OpenSSL reads when the context is made."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "docflow test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = tmp_path / "server.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = tmp_path / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


# --- ports that refuse or never answer -------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    return free_port()  # bound, then released: nothing listens there


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


# --- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def notify_logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[logging.LogRecord]]:
    # shared.platform.log.configure() stops "docflow" propagating to the root, where caplog listens.
    monkeypatch.setattr(logging.getLogger("docflow"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="docflow.notify")

    def records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name.startswith("docflow")]

    return records


def _assert_no_secret(records: list[logging.LogRecord], *secrets: str) -> None:
    assert records, "expected something to be logged"
    for record in records:
        text = record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into log record {record.getMessage()!r}"


def _smtp_config(port: int, **overrides: Any) -> NotifyConfig:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_timeout_seconds": 5.0,
        "email_from": SENDER,
        "email_to": RECIPIENTS,
    }
    values.update(overrides)
    return NotifyConfig(**values)


# --- slack_payload -----------------------------------------------------------------------------


def test_slack_payload_has_a_one_line_text_and_the_structured_alert() -> None:
    n = _notification()
    payload = slack_payload(n)
    assert payload["text"] == (
        "[docflow] service_down: database (opened): database unreachable: connection refused"
    )
    assert payload["alert"] == {
        "id": 42,
        "service_name": "database",
        "alert_type": "service_down",
        "status": "active",
        "kind": "opened",
        "message": "database unreachable: connection refused",
        "created_at": "2025-01-02T03:04:05+00:00",
        "details": {"latency_ms": 5003, "consecutive_failures": 3},
    }
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize(
    ("kind", "label"),
    [("opened", "opened"), ("repeat", "still active"), ("recovered", "recovered")],
)
def test_slack_text_names_the_kind_of_notification(kind: str, label: str) -> None:
    assert f"database ({label})" in slack_payload(_notification(kind=kind))["text"]


def test_slack_text_is_one_escaped_bounded_line_while_the_alert_keeps_everything() -> None:
    message = "probe failed <script> & more\nsecond line " + "x" * 2000
    payload = slack_payload(_notification(message=message))
    text = payload["text"]
    assert "\n" not in text
    assert "&lt;script&gt; &amp; more second line" in text
    assert "<" not in text
    assert len(text) < 700
    assert text.endswith("...")
    assert payload["alert"]["message"] == message


# --- email_message -----------------------------------------------------------------------------


def test_email_message_has_subject_addresses_and_a_body_naming_the_alert() -> None:
    msg = email_message(_notification(), SENDER, RECIPIENTS)
    assert msg["Subject"] == "[docflow] service_down: database (opened)"
    assert msg["From"] == SENDER
    assert msg["To"] == "ops@example.test, oncall@example.test"
    assert msg["Date"] and msg["Message-ID"]
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content()
    assert "database" in body
    assert "service_down" in body
    assert "database unreachable: connection refused" in body
    assert "Alert id:   42" in body and "Created at: 2025-01-02T03:04:05+00:00" in body
    assert '"latency_ms": 5003' in body


def test_email_subject_for_a_recovery() -> None:
    n = _notification(alert_type="recovery", status="resolved", kind="recovered", details={})
    msg = email_message(n, SENDER, ["ops@example.test"])
    assert msg["Subject"] == "[docflow] recovery: database (recovered)"
    assert "Details:" not in msg.get_content()


def test_email_headers_cannot_be_injected_through_alert_fields() -> None:
    n = _notification(service_name="database\r\nBcc: attacker@example.test")
    msg = email_message(n, SENDER, RECIPIENTS)
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Bcc"] is None
    headers, _, body = msg.as_bytes().partition(b"\n\n")
    assert b"\nBcc:" not in headers
    assert b"\nBcc:" not in body  # the fields in the body are one line each, too


# --- configuration -------------------------------------------------------------------------------


def test_enabled_reflects_the_configured_channels(
    notify_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    assert not Notifier(NotifyConfig()).enabled
    assert Notifier(NotifyConfig(webhook_url="http://127.0.0.1:9/hook")).enabled
    assert Notifier(_smtp_config(25)).enabled
    half_email = Notifier(NotifyConfig(smtp_host="127.0.0.1"))
    assert not half_email.enabled
    assert any("email notifications disabled" in r.getMessage() for r in notify_logs())


def test_nothing_configured_delivers_nothing_and_reports_success() -> None:
    assert Notifier(NotifyConfig()).deliver(_notification()) is True


def test_repr_hides_the_webhook_url_and_the_password() -> None:
    config = NotifyConfig(
        webhook_url=f"https://hooks.slack.com/services/{WEBHOOK_TOKEN}",
        smtp_host="smtp.example.test",
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
    )
    for text in (repr(config), repr(Notifier(config))):
        assert WEBHOOK_TOKEN not in text
        assert SMTP_PASSWORD not in text


# --- webhook delivery ----------------------------------------------------------------------------


def test_webhook_receives_slack_compatible_json(webhook: WebhookServer) -> None:
    notifier = Notifier(NotifyConfig(webhook_url=webhook.url))
    assert notifier.deliver(_notification()) is True
    assert len(webhook.requests) == 1
    request = webhook.requests[0]
    assert request["path"] == f"/services/{WEBHOOK_TOKEN}"
    assert request["content_type"] == "application/json"
    body = request["json"]
    assert isinstance(body["text"], str) and "service_down" in body["text"]
    assert body["alert"]["id"] == 42
    assert body["alert"]["service_name"] == "database"
    assert body["alert"]["alert_type"] == "service_down"
    assert body["alert"]["status"] == "active"
    assert body["alert"]["kind"] == "opened"
    assert body["alert"]["details"] == {"latency_ms": 5003, "consecutive_failures": 3}


def test_webhook_uses_a_given_http_client_and_leaves_it_open(webhook: WebhookServer) -> None:
    with httpx.Client() as client:
        notifier = Notifier(NotifyConfig(webhook_url=webhook.url), http=client)
        assert notifier.deliver(_notification(kind="repeat")) is True
        assert notifier.deliver(_notification(kind="repeat")) is True
        assert not client.is_closed
    assert [r["json"]["alert"]["kind"] for r in webhook.requests] == ["repeat", "repeat"]


def test_webhook_details_that_json_cannot_encode_are_sent_as_text(webhook: WebhookServer) -> None:
    n = _notification(details={"checked_at": dt.datetime(2025, 1, 2, tzinfo=dt.UTC)})
    assert Notifier(NotifyConfig(webhook_url=webhook.url)).deliver(n) is True
    assert webhook.requests[0]["json"]["alert"]["details"] == {
        "checked_at": "2025-01-02 00:00:00+00:00"
    }


def test_webhook_500_is_not_delivered_and_logs_the_status_only(
    webhook: WebhookServer, notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    webhook.status = 500
    assert Notifier(NotifyConfig(webhook_url=webhook.url)).deliver(_notification()) is False
    assert len(webhook.requests) == 1
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [getattr(r, "status_code", None) for r in failures] == [500]
    assert failures[0].__dict__["channel"] == "webhook"
    assert failures[0].__dict__["alert_id"] == 42
    _assert_no_secret(notify_logs(), WEBHOOK_TOKEN, "server error")


def test_unreachable_webhook_is_not_delivered_quickly(
    closed_port: int, notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    url = f"http://127.0.0.1:{closed_port}/services/{WEBHOOK_TOKEN}"
    notifier = Notifier(NotifyConfig(webhook_url=url, webhook_timeout_seconds=2.0))
    assert notifier.deliver(_notification()) is False
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == ["ConnectError"]
    _assert_no_secret(notify_logs(), WEBHOOK_TOKEN)


def test_a_webhook_that_never_answers_times_out(
    silent_port: int, notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    url = f"http://127.0.0.1:{silent_port}/hook"
    notifier = Notifier(NotifyConfig(webhook_url=url, webhook_timeout_seconds=0.5))
    assert notifier.deliver(_notification()) is False
    assert [r.__dict__["error_type"] for r in notify_logs() if r.levelno >= logging.WARNING] == [
        "ReadTimeout"
    ]


def test_a_webhook_url_that_is_not_http_is_not_delivered() -> None:
    assert Notifier(NotifyConfig(webhook_url="ftp://example.test/x")).deliver(_notification()) is (
        False
    )


# --- email delivery ------------------------------------------------------------------------------


def test_email_arrives_with_subject_from_to_and_body(
    smtp_server: Callable[..., SmtpServer],
) -> None:
    server = smtp_server()
    assert Notifier(_smtp_config(server.port)).deliver(_notification()) is True
    assert len(server.received) == 1
    received = server.received[0]
    assert received.mail_from == SENDER
    assert received.rcpt_tos == list(RECIPIENTS)
    msg = received.message
    assert msg["Subject"] == "[docflow] service_down: database (opened)"
    assert msg["From"] == SENDER
    assert msg["To"] == "ops@example.test, oncall@example.test"
    body = msg.get_content()
    assert "database" in body
    assert "service_down" in body
    assert "database unreachable: connection refused" in body


def test_both_channels_receive_one_notification(
    webhook: WebhookServer, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    config = _smtp_config(server.port, webhook_url=webhook.url)
    n = _notification(alert_type="recovery", status="resolved", kind="recovered")
    assert Notifier(config).deliver(n) is True
    assert len(webhook.requests) == 1
    assert webhook.requests[0]["json"]["alert"]["kind"] == "recovered"
    assert len(server.received) == 1
    assert server.received[0].message["Subject"] == "[docflow] recovery: database (recovered)"


def test_a_failed_channel_does_not_stop_the_other(
    webhook: WebhookServer, smtp_server: Callable[..., SmtpServer]
) -> None:
    webhook.status = 500
    server = smtp_server()
    assert Notifier(_smtp_config(server.port, webhook_url=webhook.url)).deliver(
        _notification()
    ) is (False)
    assert len(webhook.requests) == 1
    assert len(server.received) == 1


def test_unreachable_smtp_is_not_delivered_quickly(
    closed_port: int, notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    notifier = Notifier(
        _smtp_config(
            closed_port,
            smtp_username=SMTP_USER,
            smtp_password=SMTP_PASSWORD,
            smtp_timeout_seconds=2.0,
        )
    )
    assert notifier.deliver(_notification()) is False
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == ["ConnectionRefusedError"]
    assert failures[0].__dict__["channel"] == "email"
    _assert_no_secret(notify_logs(), SMTP_PASSWORD)


def test_an_smtp_server_that_never_greets_times_out(
    silent_port: int, notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    notifier = Notifier(_smtp_config(silent_port, smtp_timeout_seconds=0.5))
    assert notifier.deliver(_notification()) is False
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == ["SMTPServerDisconnected"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_auth_without_tls_logs_in_with_the_configured_credentials(
    smtp_server: Callable[..., SmtpServer], notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    server = smtp_server(auth=True, auth_require_tls=False)
    config = _smtp_config(server.port, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD)
    assert Notifier(config).deliver(_notification()) is True
    assert [(user, ok) for _, user, ok in server.logins] == [(SMTP_USER, True)]
    assert len(server.received) == 1
    _assert_no_secret(notify_logs(), SMTP_PASSWORD)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_wrong_password_is_not_delivered_and_not_logged(
    smtp_server: Callable[..., SmtpServer], notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    server = smtp_server(auth=True, auth_require_tls=False)
    wrong = "wrong-pa55word-ALSO-SECRET"
    config = _smtp_config(server.port, smtp_username=SMTP_USER, smtp_password=wrong)
    assert Notifier(config).deliver(_notification()) is False
    assert server.logins and not any(ok for _, _, ok in server.logins)  # each mechanism tried
    assert server.received == []
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == ["SMTPAuthenticationError"]
    _assert_no_secret(notify_logs(), wrong)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_auth_required_without_credentials_is_not_delivered(
    smtp_server: Callable[..., SmtpServer],
) -> None:
    server = smtp_server(auth=True, auth_require_tls=False)
    assert Notifier(_smtp_config(server.port)).deliver(_notification()) is False
    assert server.received == []


def test_starttls_then_auth_with_certificate_verification(
    smtp_server: Callable[..., SmtpServer],
    tls_server_context: ssl.SSLContext,
    notify_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    server = smtp_server(auth=True, tls_context=tls_server_context)  # AUTH only after STARTTLS
    config = _smtp_config(
        server.port, smtp_starttls=True, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
    )
    assert Notifier(config).deliver(_notification()) is True
    assert [(user, ok) for _, user, ok in server.logins] == [(SMTP_USER, True)]
    assert len(server.received) == 1
    assert server.received[0].message["Subject"] == "[docflow] service_down: database (opened)"
    _assert_no_secret(notify_logs(), SMTP_PASSWORD)


def test_starttls_refuses_a_certificate_it_cannot_verify(
    smtp_server: Callable[..., SmtpServer],
    tls_server_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
    notify_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    server = smtp_server(auth=True, tls_context=tls_server_context)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")  # the test CA is not trusted
    config = _smtp_config(
        server.port, smtp_starttls=True, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
    )
    assert Notifier(config).deliver(_notification()) is False
    assert server.logins == [] and server.received == []
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == ["SSLCertVerificationError"]


def test_starttls_required_but_not_offered_is_not_delivered_in_plain_text(
    smtp_server: Callable[..., SmtpServer], notify_logs: Callable[[], list[logging.LogRecord]]
) -> None:
    server = smtp_server()  # no tls_context: the server does not offer STARTTLS
    assert Notifier(_smtp_config(server.port, smtp_starttls=True)).deliver(_notification()) is (
        False
    )
    assert server.received == []
    failures = [r for r in notify_logs() if r.levelno >= logging.WARNING]
    assert [r.__dict__["error_type"] for r in failures] == [smtplib.SMTPNotSupportedError.__name__]
