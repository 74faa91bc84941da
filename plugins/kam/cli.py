"""`kam`: the command line of the KAM warehouse.

kam warehouse start|stop|status|url     the embedded PostgreSQL (or KAM_WAREHOUSE_URL)
kam warehouse bi-url                    the read-only BI role's URL (reads `marts` only)
kam load [--mapping FILE] PATH...       files into raw, audited, bad rows quarantined
kam dbt ARGS...                         dbt against the warehouse
kam run --date D [--dag kam_daily]      a whole DAG for one day through Airflow
kam withdraw --date D --reason TEXT     undo a day published by mistake
kam status                              what is published, the last runs, batches, messages
kam ui                                  Airflow's UI for the embedded instance on 127.0.0.1
kam expectations generate               the raw GX suites from the contract
kam report                              the HTML report of the published marts
kam docs [--port N] [--no-serve]        dbt docs of the published marts, on 127.0.0.1
kam bi [--port N]                       Superset with the dashboards, on 127.0.0.1
(kam-dev generate|bench|demo: the developer tools, outside the runtime package)
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

from kam.settings import Settings, load_settings

log = logging.getLogger("kam")


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(message: str) -> None:
    """Progress without dbt's per-node lines."""
    from kam.local.runner import DBT_ROUTINE_LINE

    if not DBT_ROUTINE_LINE.match(message):
        _say(message)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-03-31") from exc


def _yesterday(settings: Settings) -> date:
    return settings.today() - timedelta(days=1)


def _refused_future(as_of: date, settings: Settings) -> bool:
    """Say so and return True when `as_of` is after today: exit 2, nothing touched."""
    from kam.pipeline import StepFailed, refuse_future_date

    try:
        refuse_future_date(as_of, settings)
    except StepFailed as exc:
        _say(f"error: {exc}")
        return True
    return False


def cmd_warehouse(args: argparse.Namespace, settings: Settings) -> int:
    from kam.warehouse.connect import mask_url
    from kam.warehouse.server import embedded_server, ready_warehouse, warehouse_url

    if settings.warehouse_url and args.action in ("start", "stop"):
        _say(
            f"KAM_WAREHOUSE_URL is set ({mask_url(settings.warehouse_url)}); the embedded server is not used."
        )
        if args.action == "start":
            ready_warehouse(settings)  # schemas, raw contract and the BI role, as on the embedded server
        return 0
    server = embedded_server(settings)
    if args.action == "start":
        url = ready_warehouse(settings)
        _say(f"warehouse running: {mask_url(url)}  (data in {server.pgdata})")
    elif args.action == "stop":
        _say("warehouse stopped" if server.stop() else "warehouse was not running")
    elif args.action == "status":
        if settings.warehouse_url:
            from kam.warehouse.connect import connect

            try:
                with connect(settings.warehouse_url) as conn:
                    version = conn.execute("show server_version").fetchone()[0]
            except Exception as exc:  # any reason it cannot be reached is the answer
                _say(
                    f"external warehouse (KAM_WAREHOUSE_URL) {mask_url(settings.warehouse_url)} cannot be reached: "
                    + str(exc).replace(settings.warehouse_url, mask_url(settings.warehouse_url)).strip()
                )
                return 3
            _say(
                f"external warehouse (KAM_WAREHOUSE_URL): {mask_url(settings.warehouse_url)}, PostgreSQL {version}"
            )
            return 0
        running = server.is_running()
        state = server.state()
        where = mask_url(state.url()) if state else "not initialised"
        _say(f"embedded warehouse {'running' if running else 'stopped'}: {where}  (data in {server.pgdata})")
        return 0 if running else 3
    elif args.action == "url":
        # The one command whose job is to hand out the credential: `psql "$(kam warehouse url)"`.
        _say(warehouse_url(settings))
    elif args.action == "bi-url":
        from kam.warehouse.roles import bi_url

        _say(bi_url(ready_warehouse(settings), settings))
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from kam.contract import get_table
    from kam.ingest.files import Loader
    from kam.ingest.mappings import DECLARABLE_ENCODINGS, MappingError, find_mapping, load_mapping
    from kam.warehouse.server import ready_warehouse

    try:
        mapping = load_mapping(find_mapping(args.mapping, settings.mappings_dir)) if args.mapping else None
        table = get_table(args.table) if args.table else None
    except (MappingError, KeyError) as exc:
        _say(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}")
        return 2
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        _say("error: " + "; ".join(f"{p} does not exist" for p in missing) + "; nothing was loaded")
        return 2
    if args.encoding and args.encoding.lower() not in DECLARABLE_ENCODINGS:
        _say(f"error: unknown encoding {args.encoding!r}; use one of {', '.join(DECLARABLE_ENCODINGS)}")
        return 2
    results = Loader(ready_warehouse(settings), progress=_say).load_paths(
        [Path(p) for p in args.paths],
        mapping=mapping,
        table=table,
        encoding=(args.encoding or "").lower() or None,
    )
    landed = sum(r.rows_landed for r in results)
    loaded = sum(r.rows_loaded for r in results)
    quarantined = sum(r.rows_quarantined for r in results)
    failed = [r for r in results if r.status == "failed"]
    _say(
        f"{len(results)} file(s): {landed} rows landed = {loaded} loaded + {quarantined} quarantined; "
        f"{len(failed)} failed" + ("; see audit.quarantine for the bad rows" if quarantined else "")
    )
    return 1 if failed else 0


def cmd_extract(args: argparse.Namespace, settings: Settings) -> int:
    from kam.ingest.database import SourceUnreachable
    from kam.pipeline import StepFailed, extract_databases
    from kam.warehouse.server import ready_warehouse

    try:
        extract_databases(
            ready_warehouse(settings),
            settings,
            args.date or _yesterday(settings),
            {args.mapping: args.source_url},
            full_refresh=args.full_refresh,
            progress=_say,
        )
    except (StepFailed, SourceUnreachable) as exc:
        _say(f"error: {exc}")
        return 1
    return 0


def cmd_dbt(args: argparse.Namespace, settings: Settings) -> int:
    from kam.transform import run_dbt
    from kam.warehouse.server import ready_warehouse

    result = run_dbt(args.dbt_args, ready_warehouse(settings), settings, as_of_date=args.date, progress=_say)
    return result.returncode


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from kam.local.runner import run_dag, run_log_path
    from kam.warehouse.server import ready_warehouse

    as_of = args.date or _yesterday(settings)
    if _refused_future(as_of, settings):
        return 2
    url = ready_warehouse(settings)
    if args.dag == "kam_daily":
        from kam.pipeline import StepFailed, landing_files, require_data

        try:  # the DAG's first task says the same, after Airflow's start
            require_data(url, settings, landing_files(settings))
        except StepFailed as exc:
            _say(f"error: {exc}")
            return 1
    _say(
        f"running {args.dag} for {as_of} through Airflow (whole output: {run_log_path(settings, args.dag, as_of)})"
    )
    code = run_dag(
        args.dag,
        as_of,
        settings,
        url,
        progress=_say,
        quiet=not args.verbose,
        conf={"full_refresh": True} if args.full_refresh else None,
    )
    _say(
        f"{args.dag} for {as_of}: "
        + (
            "success"
            if code == 0
            else f"FAILED (exit {code}); the whole output: {run_log_path(settings, args.dag, as_of)}"
        )
    )
    return code


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from kam.report import build_report
    from kam.warehouse.connect import connect
    from kam.warehouse.publish import current_as_of
    from kam.warehouse.server import ready_warehouse

    url = ready_warehouse(settings)
    with connect(url) as conn:
        published = current_as_of(conn)
    if published is None:
        _say(
            "nothing is published yet, so there is no report to write: run the daily build first "
            "(kam run --date YYYY-MM-DD, or make demo)"
        )
        return 1
    _say(f"report written: {build_report(url, settings)}")
    return 0


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from kam.docs import build_docs, docs_server, documented_marts
    from kam.warehouse.connect import connect
    from kam.warehouse.publish import current_as_of
    from kam.warehouse.server import ready_warehouse

    url = ready_warehouse(settings)
    with connect(url) as conn:
        published = current_as_of(conn)
    if published is None:
        _say("nothing is published yet, so the docs would have no marts: run kam run --date YYYY-MM-DD first")
        return 1
    _say(f"building dbt docs of the marts published as of {published} ...")
    docs_dir = build_docs(url, settings, published, progress=_progress)
    marts = documented_marts(docs_dir)
    _say(
        f"docs written to {docs_dir} ({len(marts)} published marts in the catalog; one page: static_index.html)"
    )
    if args.no_serve:
        return 0
    server = docs_server(docs_dir, args.port or 0)
    _say(f"dbt docs: http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_bi(args: argparse.Namespace, settings: Settings) -> int:
    from kam.local import superset
    from kam.local.embedded_server import free_port
    from kam.warehouse.server import ready_warehouse

    if args.bundle_only:
        bundle = superset.write_bundle(settings, ready_warehouse(settings), reader_host=args.reader_host)
        _say(f"dashboards bundle written: {bundle} (superset import-dashboards --path {bundle.name})")
        return 0
    superset_home = superset.prepare(settings, ready_warehouse(settings), progress=_say)
    port = args.port or free_port()
    server = superset.serve(settings, superset_home, port)
    try:
        superset.wait_until_healthy(server, port)
        _say(
            f"Superset: http://127.0.0.1:{port}/ (user {superset.ADMIN}, password in "
            f"{superset_home.home / 'secrets.json'} or KAM_SUPERSET_ADMIN_PASSWORD); Ctrl-C stops"
        )
        server.wait()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


def cmd_withdraw(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from kam.pipeline import StepFailed, withdraw_day
    from kam.warehouse.server import ready_warehouse

    try:
        result = withdraw_day(
            ready_warehouse(settings), settings, args.date, getpass.getuser(), args.reason, progress=_progress
        )
    except StepFailed as exc:
        _say(f"error: {exc}")
        return 1
    if result["current"]:
        _say(f"the marts are as of {result['current']} again; alerts go out from there")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from kam.status import status_lines
    from kam.warehouse.server import ready_warehouse

    lines, healthy = status_lines(ready_warehouse(settings), settings)
    for line in lines:
        _say(line)
    return 0 if healthy else 1


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from kam.local.runner import serve_ui, ui_password, ui_passwords_file
    from kam.warehouse.server import ready_warehouse

    if args.write_password:
        ui_password(settings)
        _say(f"the Airflow admin's password is in {ui_passwords_file(settings)}")
        return 0
    return serve_ui(settings, ready_warehouse(settings), args.port, progress=_say)


def cmd_expectations(args: argparse.Namespace, settings: Settings) -> int:
    from kam.quality.suites import write_raw_suites

    paths = write_raw_suites(settings)
    _say(
        f"wrote {len(paths)} raw suites from the contract into {settings.expectations_dir / 'raw'}; review the diff"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kam", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("warehouse", help="start, stop or inspect the warehouse")
    p.add_argument("action", choices=("start", "stop", "status", "url", "bi-url"))
    p.set_defaults(func=cmd_warehouse)

    p = sub.add_parser("load", help="load files or folders into raw")
    p.add_argument("paths", nargs="+")
    p.add_argument("--mapping", help="mapping YAML for files not in the contract layout")
    p.add_argument("--table", help="raw table for contract-layout files whose name does not say it")
    p.add_argument("--encoding", help="the files' text encoding when it is not UTF-8: gb18030, latin-1, ...")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("extract", help="pull a database source into raw (what kam_daily's extract task does)")
    p.add_argument("mapping", help="a database mapping in mappings/ (erpnext, odoo)")
    p.add_argument("--source-url", required=True, help="mysql://user:pw@host:3306/db or postgresql://...")
    p.add_argument("--full-refresh", action="store_true", help="every row, and reconcile deletions")
    p.add_argument("--date", type=_date, help="as-of date (default: yesterday); sets the reconcile cadence")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("dbt", help="run dbt against the warehouse: kam dbt build --select staging")
    p.add_argument("--date", type=_date, help="as-of date (the as_of_date() macro; default: var as_of_date)")
    p.add_argument("dbt_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_dbt)

    p = sub.add_parser("run", help="run a DAG for one day through Airflow")
    p.add_argument("--date", type=_date, help="as-of date (default: yesterday)")
    p.add_argument("--dag", default="kam_daily", choices=("kam_daily", "kam_alerts"))
    p.add_argument("--verbose", action="store_true", help="show Airflow's whole output, not only the summary")
    p.add_argument(
        "--full-refresh", action="store_true", help="kam_daily: extract every row of the database sources"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("withdraw", help="withdraw a day published by mistake (e.g. a wrong year)")
    p.add_argument("--date", type=_date, required=True, help="the as-of date to withdraw")
    p.add_argument("--reason", required=True, help="why, for audit.publications")
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser("status", help="what is published, the last runs, batches, quarantine and messages")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("ui", help="Airflow's UI for the embedded instance, on 127.0.0.1")
    p.add_argument("--port", type=int, help="default: KAM_UI_PORT, else a free port")
    p.add_argument(
        "--write-password",
        action="store_true",
        help="write the admin's password (AIRFLOW_ADMIN_PASSWORD, else generated) where Airflow reads it, and stop",
    )
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("report", help="write the HTML report of the published marts under KAM_HOME/report")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("docs", help="dbt docs of the published marts (columns, types, lineage), on 127.0.0.1")
    p.add_argument("--port", type=int, help="default: a free port")
    p.add_argument("--no-serve", action="store_true", help="build them under KAM_HOME/docs and stop")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("bi", help="Apache Superset with the dashboards, on 127.0.0.1 (installs it once)")
    p.add_argument("--port", type=int, help="default: a free port")
    p.add_argument(
        "--bundle-only", action="store_true", help="write the dashboards bundle and stop (compose)"
    )
    p.add_argument(
        "--reader-host", help="with --bundle-only: host:port of the warehouse as Superset reaches it"
    )
    p.set_defaults(func=cmd_bi)

    p = sub.add_parser("expectations", help="regenerate the raw GX suites from the contract")
    p.add_argument("action", choices=("generate",))
    p.set_defaults(func=cmd_expectations)

    return parser


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse, run, and turn any unexpected error into one clear line (the traceback in the log)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection chatter
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # thousands of INFO lines per gate
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence
        log.debug("failed", exc_info=True)
        from kam.warehouse.connect import mask_url

        message = str(exc)
        if settings.warehouse_url:
            message = message.replace(settings.warehouse_url, mask_url(settings.warehouse_url))
        _say(f"error: {type(exc).__name__}: {message}")
        return 1


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
