"""Which warehouse: KAM_WAREHOUSE_URL, or the embedded server, started and bootstrapped."""

from __future__ import annotations

from kam.local.embedded_server import EmbeddedServer
from kam.settings import Settings
from kam.warehouse.bootstrap import bootstrap
from kam.warehouse.roles import ensure_bi_role


def embedded_server(settings: Settings) -> EmbeddedServer:
    return EmbeddedServer(settings.warehouse_dir, settings.warehouse_port)


def warehouse_url(settings: Settings, start: bool = True) -> str:
    """KAM_WAREHOUSE_URL when set (the embedded server is then never touched), else the
    embedded server's URL, starting it when `start`."""
    if settings.warehouse_url:
        return settings.warehouse_url
    server = embedded_server(settings)
    state = server.start() if start else server.state()
    if state is None:
        raise RuntimeError(f"no embedded warehouse under {settings.warehouse_dir}; run `kam warehouse start`")
    return state.url()


def ready_warehouse(settings: Settings) -> str:
    """The URL of a running, bootstrapped warehouse, with its BI role."""
    url = warehouse_url(settings)
    bootstrap(url)
    ensure_bi_role(url, settings)
    return url
