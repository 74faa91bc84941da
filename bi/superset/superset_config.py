"""Superset's configuration for `kam bi` and the compose service: everything from the
environment `kam bi` (or compose's .env) sets, nothing secret in the file."""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = os.environ["KAM_SUPERSET_METADATA_URL"]
# The marts are read through the BI role only; its URL is in the imported database.
PREVENT_UNSAFE_DB_CONNECTIONS = True
FEATURE_FLAGS = {
    # every chart of a dashboard renders when the dashboard opens, not when scrolled to
    "DASHBOARD_VIRTUALIZATION": False,
}
# Served on loopback by `kam bi`; compose puts it behind its own port mapping.
TALISMAN_ENABLED = False
WTF_CSRF_ENABLED = True
SUPERSET_WEBSERVER_TIMEOUT = 120
