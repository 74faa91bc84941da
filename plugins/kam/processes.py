"""Child processes that end with their parent: a `kam` killed outright (SIGKILL, an OOM
kill) must not leave Airflow, dbt or the mail catcher running on without it."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the kernel sends the child SIGTERM when its parent dies.
    Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_streaming(
    args: list[str], env: dict[str, str], on_line: Callable[[str], None], cwd: Path | None = None
) -> int:
    """Run a child whose output (stdout and stderr, as they come) goes line by line to
    `on_line`, ending with its parent; returns its exit code."""
    with subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent,  # a signal setting only: safe after fork
    ) as process:
        for line in process.stdout:
            on_line(line)
    return process.returncode
