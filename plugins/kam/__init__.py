"""KAM warehouse: the Python side of the key-account data platform.

Subpackages follow the data flow: ingest (files and ERP databases into raw), quality (the
GX gates), transform (dbt), warehouse (connect, bootstrap, roles, publish), alerts (the
emails), local (the embedded server, mail catcher and `kam run`), on_airflow (the only
modules that import Airflow). docs/design.md §7 has the layers.
"""
