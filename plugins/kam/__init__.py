"""KAM warehouse: the Python side of the key-account data platform.

One job per module: settings (paths and environment), contract (the raw contract),
warehouse (server, schemas, publish), loading (files into raw), mapping (foreign layouts),
sources (where files and rows come from), transform (dbt), orchestration (Airflow), cli.
"""
