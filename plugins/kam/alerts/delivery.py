"""Sending, once: every message through the ledger in audit.alert_ledger, so a retry or a
rerun for the same date sends only what has not gone out."""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from email.policy import SMTP as SMTP_POLICY

import psycopg

from kam.alerts.render import AlertMessage
from kam.warehouse.connect import connect

log = logging.getLogger(__name__)
RENDERED_AHEAD = 8  # messages rendered but not yet sent: enough to keep the sender busy


@dataclass
class Smtp:
    host: str
    port: int
    login: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


@dataclass
class DeliveryReport:
    sent: int = 0
    already_sent: int = 0
    failed: list[str] = field(default_factory=list)  # worth retrying (the server or the network)
    refused: list[str] = field(default_factory=list)  # recipients the server refused for good (5xx)


def deliver(
    url: str,
    messages: Sequence[AlertMessage],
    smtp: Smtp,
    mail_from: str,
    progress: Callable[[str], None] = log.info,
) -> DeliveryReport:
    """Send each message unless the ledger says it was sent. A failure is recorded and the
    others still go; the caller fails the task so Airflow retries the rest.

    This thread renders each message while a sender thread sends the one before and records
    it: rendering is CPU, the rest is waiting on the mail server and the ledger's commits."""
    report = DeliveryReport()
    session = _Session(smtp, mail_from)
    with connect(url, autocommit=True) as conn, contextlib.closing(session):
        conn.cursor().executemany(
            "insert into audit.alert_ledger (message_key, alert_type, as_of_date, recipients, subject, message_id,"
            " status) values (%s, %s, %s, %s, %s, %s, 'pending') on conflict (message_key) do nothing",
            [
                (
                    m.key,
                    m.alert_type,
                    m.as_of_date,
                    ", ".join(m.to + m.cc),
                    m.subject,
                    m.message_id,
                )
                for m in messages
            ],
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp") as sender:
            in_flight: deque[Future] = deque()
            for message in messages:
                rendered = message.to_email(mail_from).as_bytes(policy=SMTP_POLICY)  # CRLF, as SMTP sends
                in_flight.append(sender.submit(_send_once, conn, session, message, rendered, report))
                while len(in_flight) > RENDERED_AHEAD:
                    in_flight.popleft().result()
            for future in in_flight:
                future.result()
    progress(
        f"alerts: {report.sent} sent, {report.already_sent} already sent earlier, {len(report.failed)} failed"
        + (
            f", {len(report.refused)} recipient(s) refused by the server: " + "; ".join(report.refused)
            if report.refused
            else ""
        )
    )
    return report


def _record_recipients(conn: psycopg.Connection, message: AlertMessage, refused: dict) -> None:
    conn.cursor().executemany(
        "insert into audit.alert_recipients (message_key, recipient, accepted, smtp_code, smtp_reply)"
        " values (%s, %s, %s, %s, %s) on conflict (message_key, recipient) do update set accepted = excluded.accepted,"
        " smtp_code = excluded.smtp_code, smtp_reply = excluded.smtp_reply, recorded_at = now()",
        [
            (
                message.key,
                recipient,
                recipient not in refused,
                refused[recipient][0] if recipient in refused else 250,
                _reply(refused[recipient][1]) if recipient in refused else None,
            )
            for recipient in message.to + message.cc
        ],
    )


def _reply(text: bytes | str) -> str:
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text))[:500]


def _send_once(
    conn: psycopg.Connection,
    session: _Session,
    message: AlertMessage,
    rendered: bytes,
    report: DeliveryReport,
) -> None:
    """Send under the ledger row's lock, so two deliveries of the same message cannot both send."""
    with conn.transaction():
        status = conn.execute(
            "select status from audit.alert_ledger where message_key = %s for update", (message.key,)
        ).fetchone()[0]
        if status == "sent":
            report.already_sent += 1
            return
        try:
            refused = session.send(message.to + message.cc, rendered)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused: permanent, not retried
            _record_recipients(conn, message, exc.recipients)
            conn.execute(
                "update audit.alert_ledger set status = 'failed', attempts = attempts + 1,"
                " last_error = %s where message_key = %s",
                (
                    "every recipient refused: "
                    + "; ".join(f"{r} {c}" for r, (c, _) in exc.recipients.items()),
                    message.key,
                ),
            )
            report.refused += [f"{r} ({c} {_reply(m)})" for r, (c, m) in exc.recipients.items()]
            return
        except (OSError, smtplib.SMTPException) as exc:
            conn.execute(
                "update audit.alert_ledger set status = 'failed', attempts = attempts + 1,"
                " last_error = %s where message_key = %s",
                (str(exc)[:500], message.key),
            )
            report.failed.append(f"{message.key}: {exc}")
            return
        _record_recipients(conn, message, refused)
        conn.execute(
            "update audit.alert_ledger set status = 'sent', attempts = attempts + 1,"
            " last_error = %s, sent_at = now() where message_key = %s",
            ("refused: " + "; ".join(refused) if refused else None, message.key),
        )
        report.sent += 1
        report.refused += [f"{r} ({c} {_reply(m)})" for r, (c, m) in refused.items()]


class _Session:
    """One SMTP connection for a whole delivery (a handshake per message cost more than the
    message), opened on first use and again after the server drops it."""

    def __init__(self, smtp: Smtp, mail_from: str):
        self.smtp = smtp
        self.mail_from = mail_from
        self.client: smtplib.SMTP | None = None

    def send(self, recipients: tuple[str, ...], rendered: bytes) -> dict:
        """Send; returns the recipients the server refused (the others accepted it)."""
        try:
            return self._client().sendmail(self.mail_from, recipients, rendered)
        except smtplib.SMTPServerDisconnected:
            self.client = None  # an idle timeout on the server's side: one fresh connection
            return self._client().sendmail(self.mail_from, recipients, rendered)
        except smtplib.SMTPResponseException:
            raise  # the server refused this message; the connection is still good for the next
        except OSError:  # the connection broke (smtplib's errors are OSErrors too)
            self.close()
            raise

    def _client(self) -> smtplib.SMTP:
        if self.client is None:
            client = smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout)
            if self.smtp.starttls:
                client.starttls()
            if self.smtp.login:
                client.login(self.smtp.login, self.smtp.password or "")
            self.client = client
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None
