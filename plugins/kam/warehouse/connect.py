"""How to reach the warehouse: a connection, and its URL masked for people and logs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg


def mask_url(url: str) -> str:
    """The URL with its password replaced, for anything a person or a log will read."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=autocommit, application_name="kam")
