"""`kam docs`: dbt's documentation of what BI reads — the published marts' columns and
types in the catalog, their lineage back to the raw tables, and the exposures that read
them — served on 127.0.0.1."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kam.constants import PUBLISHED_SCHEMA
from kam.settings import Settings
from kam.transform import run_dbt


class DocsFailed(RuntimeError):
    pass


def build_docs(url: str, settings: Settings, as_of: date, progress: Callable[[str], None] = print) -> Path:
    """dbt docs generate with the marts' nodes pointed at the published schema (they are
    built elsewhere and swapped in, so a build's catalog would describe a schema that is gone).
    Its own target directory: the pipeline's manifest and partial-parse state stay as they are."""
    target = settings.docs_dir
    result = run_dbt(
        ["docs", "generate", "--static"],
        url,
        settings,
        as_of_date=as_of,
        progress=progress,
        marts_schema=PUBLISHED_SCHEMA,
        target_dir=target,
    )
    if not result.ok:
        raise DocsFailed(
            f"dbt docs generate failed (exit {result.returncode}); see {settings.logs_dir / 'dbt'}"
        )
    return target


def documented_marts(docs_dir: Path) -> dict[str, int]:
    """The published marts the catalog describes, with their column counts."""
    catalog = json.loads((docs_dir / "catalog.json").read_text())
    return {
        node["metadata"]["name"]: len(node["columns"])
        for node in catalog["nodes"].values()
        if node["metadata"]["schema"] == PUBLISHED_SCHEMA
    }


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Per-request lines would bury the URL the user needs."""


def docs_server(docs_dir: Path, port: int) -> ThreadingHTTPServer:
    """A file server for the docs, on loopback only."""
    return ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_QuietFiles, directory=str(docs_dir)))
