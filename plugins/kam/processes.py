"""Child processes that end with their parent: a `kam` killed outright (SIGKILL, an OOM
kill) must not leave Airflow, dbt or the mail catcher running on without it."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the kernel sends the child SIGTERM when its parent dies.
    Linux only; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
