"""Alert notifications: a JSON webhook (that a Slack incoming webhook accepts) and SMTP email.

The monitor calls `Notifier.deliver` when an alert opens, when it recovers, and again every
repeat interval while it stays active and unacknowledged. Delivery never raises: a failure is
logged (the HTTP status or the exception type, never a URL, a password or a response body) and
`deliver` returns False, so that the caller retries on its next run and probing carries on.

A receiver that hangs costs a run little: each network step of a delivery waits at most
`PROBE_TIMEOUT_SECONDS` (`notifier_for`), and within one run (`notify_due`) a channel that
raised (no connection, a timeout) is not tried again for the notifications after it; they
count as not delivered and go out on the next run. So a run with every channel hanging ends
after about one timeout per channel, however many notifications are due.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from shared.platform.client import Database
from shared.platform.config import Settings
from shared.platform.log import get_logger

log = get_logger("notify")

# The one-line summary keeps the message short; the structured alert carries all of it.
_SUMMARY_MESSAGE_CHARS = 500
_KIND_LABEL = {"opened": "opened", "repeat": "still active", "recovered": "recovered"}


@dataclass(frozen=True)
class Notification:
    alert_id: int
    service_name: str
    alert_type: str  # service_down | service_degraded | recovery
    status: str  # active | acknowledged | resolved
    message: str
    kind: str  # opened | repeat | recovered
    created_at: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyConfig:
    webhook_url: str | None = None
    webhook_timeout_seconds: float = 5.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 10.0
    email_from: str | None = None
    email_to: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # The webhook URL of a Slack incoming webhook is itself a secret, as is the password.
        return (
            f"NotifyConfig(webhook={'set' if self.webhook_url else 'unset'}, "
            f"smtp_host={self.smtp_host!r}, smtp_port={self.smtp_port}, "
            f"smtp_username={'set' if self.smtp_username else 'unset'}, "
            f"smtp_starttls={self.smtp_starttls}, email_from={self.email_from!r}, "
            f"email_to={self.email_to!r})"
        )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as control characters in `text`; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary(n: Notification) -> str:
    message = _one_line(n.message)
    if len(message) > _SUMMARY_MESSAGE_CHARS:
        message = message[: _SUMMARY_MESSAGE_CHARS - 3] + "..."
    label = _KIND_LABEL.get(n.kind, _one_line(n.kind))
    head = f"[docflow] {_one_line(n.alert_type)}: {_one_line(n.service_name)} ({label})"
    return f"{head}: {message}" if message else head


def _alert_fields(n: Notification) -> dict[str, Any]:
    return {
        "id": n.alert_id,
        "service_name": n.service_name,
        "alert_type": n.alert_type,
        "status": n.status,
        "kind": n.kind,
        "message": n.message,
        "created_at": n.created_at,
        "details": n.details,
    }


def slack_payload(n: Notification) -> dict[str, Any]:
    """The webhook body: Slack shows `text` and ignores `alert`, which other receivers read."""
    return {"text": _slack_escape(_summary(n)), "alert": _alert_fields(n)}


def email_message(n: Notification, sender: str, recipients: Iterable[str]) -> EmailMessage:
    """A plain-text email: the summary as subject, the alert's fields and details as body."""
    msg = EmailMessage()
    label = _KIND_LABEL.get(n.kind, n.kind)
    # Header values are made one line: no header injection through an alert's fields.
    msg["Subject"] = _one_line(f"[docflow] {n.alert_type}: {n.service_name} ({label})")
    msg["From"] = _one_line(sender)
    msg["To"] = ", ".join(_one_line(r) for r in recipients)
    msg["Date"] = formatdate(localtime=False)
    # An explicit domain: the default looks up this host's FQDN, which can block on DNS.
    msg["Message-ID"] = make_msgid(domain="docflow.local")
    fields = [
        ("Service", n.service_name),
        ("Alert type", n.alert_type),
        ("Event", label),
        ("Status", n.status),
        ("Alert id", n.alert_id),
        ("Created at", n.created_at),
    ]
    lines = [f"{name + ':':<12}{_one_line(str(value))}" for name, value in fields]
    lines += ["", n.message]
    if n.details:
        lines += ["", "Details:", json.dumps(n.details, indent=2, sort_keys=True, default=str)]
    msg.set_content("\n".join(lines) + "\n")
    return msg


class Notifier:
    """Sends one notification to every configured channel."""

    def __init__(self, config: NotifyConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self._http = http
        self._webhook_url = (config.webhook_url or "").strip() or None
        self._smtp_host = (config.smtp_host or "").strip() or None
        self._sender = (config.email_from or "").strip() or None
        self._recipients = tuple(r.strip() for r in config.email_to if r.strip())
        if self._smtp_host and not (self._sender and self._recipients):
            log.warning(
                "email notifications disabled: a sender and at least one recipient are required",
                extra={"channel": "email"},
            )

    def __repr__(self) -> str:
        return f"Notifier({self.config!r})"

    @property
    def webhook_enabled(self) -> bool:
        return self._webhook_url is not None

    @property
    def email_enabled(self) -> bool:
        return bool(self._smtp_host and self._sender and self._recipients)

    @property
    def enabled(self) -> bool:
        return self.webhook_enabled or self.email_enabled

    def deliver(self, notification: Notification, *, unreachable: set[str] | None = None) -> bool:
        """True when every configured channel accepted the notification; never raises.

        `unreachable` is the channels that raised earlier in the same run: they are not tried
        (the notification is not delivered, and goes out on the next run), and a channel that
        raises now is added to it.
        """
        ok = True
        if self.webhook_enabled:
            ok = self._guarded("webhook", self._send_webhook, notification, unreachable) and ok
        if self.email_enabled:
            ok = self._guarded("email", self._send_email, notification, unreachable) and ok
        return ok

    def _guarded(
        self,
        channel: str,
        send: Callable[[Notification, dict[str, Any]], bool],
        n: Notification,
        unreachable: set[str] | None,
    ) -> bool:
        extra = {"channel": channel, "alert_id": n.alert_id, "notify_kind": n.kind}
        if unreachable is not None and channel in unreachable:
            log.warning(
                "notification not delivered",
                extra={**extra, "reason": "channel_failed_earlier_in_run"},
            )
            return False
        try:
            delivered = send(n, extra)
        except Exception as exc:
            # Only the type: messages can carry a URL (with its token) or a server's reply.
            log.warning(
                "notification not delivered",
                extra={**extra, "error_type": type(exc).__name__},
            )
            if unreachable is not None:
                unreachable.add(channel)
            return False
        if delivered:
            log.info("notification delivered", extra=extra)
        return delivered

    # webhook -------------------------------------------------------------------------------------

    def _send_webhook(self, n: Notification, extra: dict[str, Any]) -> bool:
        assert self._webhook_url is not None
        body = json.dumps(slack_payload(n), default=str).encode()
        timeout = httpx.Timeout(self.config.webhook_timeout_seconds)
        headers = {"Content-Type": "application/json", "User-Agent": "docflow-notify"}
        if self._http is not None:
            response = self._http.post(
                self._webhook_url, content=body, headers=headers, timeout=timeout
            )
        else:
            with httpx.Client(timeout=timeout, follow_redirects=False) as client:
                response = client.post(self._webhook_url, content=body, headers=headers)
        if response.is_success:
            return True
        log.warning(
            "notification not delivered",
            extra={**extra, "status_code": response.status_code},
        )
        return False

    # email ---------------------------------------------------------------------------------------

    def _send_email(self, n: Notification, extra: dict[str, Any]) -> bool:
        assert self._smtp_host is not None and self._sender is not None
        cfg = self.config
        msg = email_message(n, self._sender, self._recipients)
        # Host in the constructor (not a later connect()): STARTTLS verifies the certificate
        # against it. A constructor that fails (refused, timed out, bad greeting) closes itself.
        smtp = smtplib.SMTP(self._smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout_seconds)
        try:
            if cfg.smtp_starttls:
                # Raises when the server does not offer STARTTLS: never fall back to plain text.
                smtp.starttls(context=ssl.create_default_context())
            if cfg.smtp_username:
                smtp.login(cfg.smtp_username, cfg.smtp_password or "")
            refused = smtp.send_message(msg, from_addr=self._sender, to_addrs=self._recipients)
        except BaseException:
            smtp.close()
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            # The server has the message: a failed goodbye is not a failed delivery.
            smtp.close()
        if refused:
            # Accepted for the others; a retry would send them a duplicate.
            log.warning(
                "notification refused for some recipients",
                extra={**extra, "refused_count": len(refused)},
            )
        return True


def notifier_for(settings: Settings) -> Notifier:
    """The configured channels. Deliveries are part of a probe run, so each of their network
    steps (connect, each read or write, each SMTP reply) waits at most PROBE_TIMEOUT_SECONDS,
    as the probes do."""
    return Notifier(
        NotifyConfig(
            webhook_url=settings.alert_webhook_url.get_secret_value()
            if settings.alert_webhook_url
            else None,
            webhook_timeout_seconds=settings.probe_timeout_seconds,
            smtp_timeout_seconds=settings.probe_timeout_seconds,
            smtp_host=settings.smtp_host,
            smtp_port=settings.smtp_port,
            smtp_username=settings.smtp_username,
            smtp_password=settings.smtp_password.get_secret_value()
            if settings.smtp_password
            else None,
            smtp_starttls=settings.smtp_starttls,
            email_from=settings.alert_email_from,
            email_to=tuple(a.strip() for a in settings.alert_email_to.split(",") if a.strip()),
        )
    )


def notify_due(
    db: Database, settings: Settings, notifier: Notifier, *, now: datetime | None = None
) -> dict[str, int]:
    """Deliver what is due; only delivered notifications are marked (the rest retry later).
    A channel that raised is not tried again in this run (see the module's docstring)."""
    if not notifier.enabled:
        return {"due": 0, "delivered": 0, "failed": 0}
    due = db.call("due_notifications", repeat_seconds=settings.alert_repeat_seconds, now=now)
    delivered = []
    unreachable: set[str] = set()
    for alert in due:
        ok = notifier.deliver(
            Notification(
                alert_id=alert["id"],
                service_name=alert["service_name"],
                alert_type=alert["alert_type"],
                status=alert["status"],
                message=alert["message"],
                kind=alert["kind"],
                created_at=str(alert["created_at"]),
                details=alert.get("details") or {},
            ),
            unreachable=unreachable,
        )
        if ok:
            delivered.append(alert["id"])
    if delivered:
        db.call("mark_notified", alert_ids=delivered, now=now)
    return {"due": len(due), "delivered": len(delivered), "failed": len(due) - len(delivered)}
