"""The embedded default's mail server: SMTP on 127.0.0.1 that writes every message it
receives as an .eml file under KAM_HOME/outbox, so the demo exercises the real sending path."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from kam.embedded_server import free_port


class _OutboxHandler:
    def __init__(self, outbox: Path):
        self.outbox = outbox
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self.numbers):04d}.eml"
        (self.outbox / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class MailCatcher:
    """`with MailCatcher(outbox) as smtp:` serves smtp.port until the block ends."""

    def __init__(self, outbox: Path, port: int | None = None):
        self.outbox = outbox
        self.port = port or free_port()
        self.controller = Controller(_OutboxHandler(outbox), hostname="127.0.0.1", port=self.port)

    @property
    def connection_uri(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
