"""Credentials from Airflow connections, never from DAG code: the warehouse, the ERP
databases and the SMTP server."""

from __future__ import annotations

from urllib.parse import quote

from kam.alerts.delivery import Smtp
from kam.constants import CONNECTION_SCHEMES, SMTP_CONN_ID
from kam.pipeline import StepFailed


def url_from_connection(conn_id: str) -> str:
    """A database URL from an Airflow connection."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type not in CONNECTION_SCHEMES:
        raise StepFailed(
            f"connection {conn_id} is of type {conn.conn_type!r}; use one of {', '.join(CONNECTION_SCHEMES)}"
        )
    scheme, default_port = CONNECTION_SCHEMES[conn.conn_type]
    credentials = quote(conn.login or "", safe="")
    if conn.password:
        credentials += ":" + quote(conn.password, safe="")
    return f"{scheme}://{credentials}@{conn.host}:{conn.port or default_port}/{conn.schema or ''}"


def smtp_from_connection(conn_id: str = SMTP_CONN_ID) -> Smtp:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return Smtp(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 25),
        login=conn.login or None,
        password=conn.password or None,
        starttls=bool(conn.extra_dejson.get("starttls", False)),
    )
