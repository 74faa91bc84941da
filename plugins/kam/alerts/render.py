"""Safe rendering: every value that came from data is escaped for HTML, kept to one line
and out of headers, and neutralised in CSV attachments (a cell starting with = + - @ would
run as a spreadsheet formula). An AlertMessage is one email, keyed for the ledger."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate

EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
LINE_BREAKS_AND_CONTROLS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CELL_CHARS = 300


@dataclass
class AlertMessage:
    alert_type: str
    as_of_date: date
    to: tuple[str, ...]
    subject: str
    html: str
    text: str
    cc: tuple[str, ...] = ()
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)  # (file name, bytes, mime type)
    occasion: str = ""  # set when one as-of date can warrant several messages (a run that failed)

    @property
    def key(self) -> str:
        return "/".join(
            filter(
                None, [self.alert_type, self.as_of_date.isoformat(), self.occasion, ",".join(sorted(self.to))]
            )
        )

    @property
    def message_id(self) -> str:
        # Deterministic: a message resent after a lost acknowledgement carries the same id.
        return f"<{hashlib.sha256(self.key.encode()).hexdigest()[:32]}@kam-warehouse>"

    def to_email(self, mail_from: str) -> EmailMessage:
        email = EmailMessage()
        email["From"] = mail_from
        email["To"] = ", ".join(self.to)
        if self.cc:
            email["Cc"] = ", ".join(self.cc)
        email["Subject"] = self.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = self.message_id
        # base64, not the quoted-printable Python picks for long non-ASCII lines: that is
        # encoded in pure Python and cost more than everything else about a long list
        email.set_content(self.text, cte="base64")
        email.add_alternative(self.html, subtype="html", cte="base64")
        for name, payload, mime in self.attachments:
            maintype, subtype = mime.split("/", 1)
            email.add_attachment(payload, maintype=maintype, subtype=subtype, filename=name)
        return email


def single_line(value: object, limit: int = CELL_CHARS) -> str:
    """Text fit for one table cell or a subject: no line breaks, bounded length."""
    if value is None:
        return ""
    if not isinstance(value, str):
        text = str(value)  # numbers and dates are one line already
    elif value.isprintable():
        text = value.strip()  # no line breaks or controls: skip the substitution
    else:
        text = LINE_BREAKS_AND_CONTROLS.sub(" ", value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def normalised_address(address: str | None) -> str | None:
    """The address as mail goes to it (trimmed, lower case), or None when it is not one
    address: a line break, a second address or anything else never reaches a header."""
    if not address:
        return None
    candidate = address.strip().lower()
    return candidate if EMAIL_PATTERN.fullmatch(candidate) else None


def money(amount: Decimal | float | None) -> str:
    return f"{Decimal(amount or 0):,.2f}"


def cells(records: Iterable[Sequence[object]]) -> list[list[str]]:
    return [[single_line(v) for v in record] for record in records]


def html_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """`rows` as `cells` made them."""
    head = "".join(f"<th style='text-align:left;padding:4px 8px'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:4px 8px'>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table style='border-collapse:collapse;font-family:sans-serif;font-size:13px'><tr>{head}</tr>{body}</table>"


def csv_attachment(columns: Sequence[str], records: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with BOM so Excel shows Chinese names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in records:
        writer.writerow([spreadsheet_safe(single_line(v, 2000) if isinstance(v, str) else v) for v in record])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def page(title: str, intro: str, table: str, note: str = "") -> str:
    return (
        f"<html><body style='font-family:sans-serif'><h2>{html.escape(title)}</h2><p>{html.escape(intro)}</p>"
        f"{table}<p style='color:#666'>{html.escape(note)}</p></body></html>"
    )
