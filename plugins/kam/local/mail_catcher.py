"""The embedded default's mail server: SMTP on 127.0.0.1 that writes every message it
receives as an .eml file under KAM_HOME/outbox, so the demo exercises the real sending path."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from kam.local.embedded_server import free_port
from kam.processes import die_with_parent

READY_SECONDS = 30


class _OutboxHandler:
    def __init__(self, outbox: Path):
        self.outbox = outbox
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.outbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self.numbers):04d}.eml"
        (self.outbox / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _controller(outbox: Path, port: int) -> Controller:
    return Controller(_OutboxHandler(outbox), hostname="127.0.0.1", port=port)


def serve(outbox: Path, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C: `python -m kam.local.mail_catcher OUTBOX PORT`."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    controller = _controller(outbox, port)
    controller.start()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


class MailCatcher:
    """`with MailCatcher(outbox) as smtp:` serves smtp.port until the block ends.

    With own_process, the server runs in a child process, as a real mail server does: the
    sender's process then does only the sender's work (what `kam-dev bench` measures)."""

    def __init__(self, outbox: Path, port: int | None = None, own_process: bool = False):
        self.outbox = outbox
        self.port = port or free_port()
        self.own_process = own_process
        self.controller: Controller | None = None
        self.process: subprocess.Popen | None = None

    @property
    def connection_uri(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> MailCatcher:
        if not self.own_process:
            self.controller = _controller(self.outbox, self.port)
            self.controller.start()
            return self
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kam.local.mail_catcher", str(self.outbox), str(self.port)],
            preexec_fn=die_with_parent,  # noqa: PLW1509 - a signal setting, no locks taken
        )
        deadline = time.monotonic() + READY_SECONDS
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"the mail catcher did not start on 127.0.0.1:{self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
