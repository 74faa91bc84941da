"""Database sources against the machine's real MariaDB (ERPNext's tables) and PostgreSQL
(Odoo's tables), read through a user that has only SELECT: incremental extraction by
watermark, soft and hard deletions, the full refresh, the mass-deletion guard, and kam_daily
end to end into the marts."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest

from kam.ingest.database import DatabaseExtractor, load_database_mapping
from kam.pipeline import StepFailed, extract_databases
from tests.conftest import AS_OF, make_settings, rows, run_kam
from tests.erp_fixtures import ErpNext, Odoo

SOURCE_TABLES = (
    "companies",
    "customers",
    "sales_orders",
    "sales_order_lines",
    "shipments",
    "invoices",
    "invoice_lines",
    "invoice_installments",
    "credit_notes",
    "payments",
    "payment_allocations",
    "payment_deductions",
)
NEXT_DAY = AS_OF + timedelta(days=1)


def seed_erpnext(erp: ErpNext) -> None:
    erp.customer("CUST-00001", "Huadong Distribution", "Distributor")
    erp.customer("CUST-00002", "Jiahe Supermarkets", "Retail Chain")
    erp.customer("CUST-00003", "Mingda Factory", "Commercial")
    erp.sales_order(
        "SAL-ORD-2026-00001",
        "CUST-00001",
        date(2026, 8, 1),
        [("WIDGET", 100, 10, 100), ("GADGET", 50, 20, 0)],
    )
    erp.sales_order(
        "SAL-ORD-2026-00002", "CUST-00002", date(2026, 10, 20), [("WIDGET", 10, 10, 0)], docstatus=0
    )
    erp.delivery_note("MAT-DN-2026-00001", "CUST-00001", date(2026, 8, 3), 1000, "SAL-ORD-2026-00001")
    erp.sales_invoice("ACC-SINV-2026-00001", "CUST-00001", date(2026, 8, 5), [("WIDGET", 100, 10)])
    erp.sales_invoice("ACC-SINV-2026-00002", "CUST-00002", date(2026, 9, 1), [("WIDGET", 50, 10)])
    erp.sales_invoice("ACC-SINV-2026-00003", "CUST-00001", date(2026, 10, 10), [("GADGET", 15, 20)])
    erp.sales_invoice(
        "ACC-SINV-2026-00004", "CUST-00003", date(2026, 10, 12), [("GADGET", 5, 20)], docstatus=0
    )
    erp.sales_invoice(
        "ACC-SINV-RET-2026-00001",
        "CUST-00002",
        date(2026, 9, 10),
        [("WIDGET", -10, 10)],
        return_against="ACC-SINV-2026-00002",
        update_outstanding_for_self=False,
    )
    erp.payment_entry(
        "ACC-PAY-2026-00001", "CUST-00001", date(2026, 9, 1), 1000, {"ACC-SINV-2026-00001": 1000}
    )
    erp.payment_entry(
        "ACC-PAY-2026-00002",
        "CUST-00002",
        date(2026, 10, 1),
        180,
        {"ACC-SINV-2026-00002": 200},
        (("Promotional Allowance - KT", 20),),
    )


def seed_odoo(erp: Odoo) -> dict[str, int]:
    wholesale = erp.partner("Suzhou Wholesale", "Distributor")
    market = erp.partner("Hangzhou Market", None)
    order, lines = erp.sale_order(wholesale, date(2026, 8, 2), [(501, 40, 25, 40), (502, 10, 50, 0)])
    erp.delivery(order, wholesale, date(2026, 8, 4), [(lines[0], 40)])
    paid = erp.invoice(wholesale, date(2026, 8, 6), [(501, 40, 25)])
    open_invoice = erp.invoice(market, date(2026, 9, 20), [(502, 8, 50)])
    refunded = erp.invoice(wholesale, date(2026, 10, 5), [(501, 10, 25)])
    refund = erp.invoice(
        wholesale, date(2026, 10, 8), [(501, 2, 25)], move_type="out_refund", reversed_entry=refunded
    )
    erp.reconcile(refund, refunded, 50)
    erp.payment(wholesale, date(2026, 9, 5), 1000, {paid: 1000})
    erp.payment(market, date(2026, 10, 2), 150, {open_invoice: 150})
    return {
        "wholesale": wholesale,
        "market": market,
        "paid": paid,
        "open": open_invoice,
        "refunded": refunded,
    }


def order_of(erp: Odoo) -> int:
    return erp.admin.execute("select min(id) from sale_order").fetchone()[0]


def raw_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in SOURCE_TABLES}  # noqa: S608


def raw_digest(url: str) -> dict[str, str]:
    """Each raw table's contract columns, hashed: equal digests mean equal contents."""
    from kam.contract import get_table

    with psycopg.connect(url) as conn:
        digests = {}
        for name in SOURCE_TABLES:
            columns = ", ".join(get_table(name).column_names)
            digests[name] = conn.execute(
                f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from (select {columns} from raw.{name}) t"  # noqa: S608
            ).fetchone()[0]
        return digests


def changed_rows(summary: dict) -> dict[str, int]:
    """Rows extracted per raw table (changed rows, and rows removed as deleted)."""
    return {
        b["file"].split(".", 1)[1]: b["rows_landed"] + b["rows_deleted"]
        for b in summary["batches"]
        if b["rows_landed"] + b["rows_deleted"]
    }


def deletions(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select source_name, table_name, reason, record from audit.source_deletions order by deletion_id"
        ).fetchall()


def test_erpnext_extracts_only_what_changed(warehouse, erpnext, tmp_path):
    seed_erpnext(erpnext)
    settings = make_settings(tmp_path, warehouse)
    sources = {"erpnext": erpnext.url}

    first = extract_databases(warehouse, settings, AS_OF, sources)
    counts = raw_counts(warehouse)
    # Submitted documents only: the draft order and the draft invoice stay in the ERP.
    assert counts == {
        "companies": 1,
        "customers": 3,
        "sales_orders": 1,
        "sales_order_lines": 2,
        "shipments": 1,
        "invoices": 3,
        "invoice_lines": 3,
        "invoice_installments": 0,
        "credit_notes": 1,
        "payments": 2,
        "payment_allocations": 2,
        "payment_deductions": 1,
    }
    assert first["rows_landed"] == first["rows_loaded"] == sum(counts.values())
    with psycopg.connect(warehouse) as conn:
        customer = conn.execute(
            "select customer_type, region, territory, account_manager_email, payment_terms_days, is_active "
            "from raw.customers where customer_id = 'CUST-00001'"
        ).fetchone()
        credit = conn.execute("select invoice_id, amount from raw.credit_notes").fetchone()
    assert customer == ("distributor", "China", "East China", "li.wei@example.com", 30, True)
    assert credit == ("ACC-SINV-2026-00002", 100)

    before = raw_digest(warehouse)
    again = extract_databases(warehouse, settings, AS_OF, sources)
    assert again["rows_landed"] == 0 and changed_rows(again) == {}
    assert raw_digest(warehouse) == before

    erpnext.save("Customer", "CUST-00002", customer_name="Jiahe Supermarkets Group")
    erpnext.sales_invoice("ACC-SINV-2026-00005", "CUST-00002", date(2026, 10, 25), [("WIDGET", 20, 10)])
    erpnext.cancel("Payment Entry", "ACC-PAY-2026-00002")
    third = extract_databases(warehouse, settings, AS_OF, sources)
    assert changed_rows(third) == {
        "customers": 1,
        "invoices": 1,
        "invoice_lines": 1,
        "payments": 1,
        "payment_allocations": 1,
        "payment_deductions": 1,
    }
    assert raw_counts(warehouse) == counts | {
        "invoices": 4,
        "invoice_lines": 4,
        "payments": 1,
        "payment_allocations": 1,
        "payment_deductions": 0,
    }
    soft = [(table, reason) for _, table, reason, _ in deletions(warehouse)]
    assert soft == [
        ("payments", "soft_deleted"),
        ("payment_allocations", "soft_deleted"),
        ("payment_deductions", "soft_deleted"),
    ]

    # A customer deleted outright leaves no trace but its absence: the next day's key
    # reconciliation removes it and keeps the row it had.
    erpnext.delete("Customer", "CUST-00003")
    fourth = extract_databases(warehouse, settings, NEXT_DAY, sources)
    assert changed_rows(fourth) == {"customers": 1}
    gone = deletions(warehouse)[-1]
    assert gone[:3] == ("erpnext", "customers", "missing_from_source")
    assert gone[3]["customer_name"] == "Mingda Factory"

    current = raw_digest(warehouse)
    # A full refresh reads every row again and finds none changed.
    full = extract_databases(warehouse, settings, NEXT_DAY, sources, full_refresh=True)
    assert full["rows_landed"] == 0
    counts = raw_counts(warehouse)
    for batch in full["batches"]:
        loaded = counts[batch["file"].split(".", 1)[1]]
        assert not loaded or f"; {loaded} read again unchanged" in batch["message"], batch["message"]
    assert raw_digest(warehouse) == current


def test_odoo_extracts_only_what_changed(warehouse, odoo, tmp_path):
    ids = seed_odoo(odoo)
    settings = make_settings(tmp_path, warehouse)
    sources = {"odoo": odoo.url}

    first = extract_databases(warehouse, settings, AS_OF, sources)
    counts = raw_counts(warehouse)
    # the refund is a credit note and, matched with the invoice it credits, a payment of it
    assert counts == {
        "companies": 1,
        "customers": 2,
        "sales_orders": 1,
        "sales_order_lines": 2,
        "shipments": 1,
        "invoices": 3,
        "invoice_lines": 3,
        "invoice_installments": 3,
        "credit_notes": 1,
        "payments": 3,
        "payment_allocations": 3,
        "payment_deductions": 0,
    }
    assert first["rows_loaded"] == sum(counts.values())
    with psycopg.connect(warehouse) as conn:
        assert conn.execute(
            "select customer_type, region, territory, account_manager from raw.customers where customer_id = %s",
            (str(ids["wholesale"]),),
        ).fetchone() == ("distributor", "Shanghai", "CN", "Zhang Min")
        assert conn.execute("select order_id, amount from raw.shipments").fetchone() == (
            str(order_of(odoo)),
            1000,
        )
        assert conn.execute(
            "select amount from raw.payment_allocations where invoice_id = %s", (str(ids["open"]),)
        ).fetchone() == (150,)

    assert extract_databases(warehouse, settings, AS_OF, sources)["rows_landed"] == 0

    # Reset to draft, a posted invoice leaves the source's posted set: the reconciliation
    # removes it (and its lines); a cancelled one is kept as cancelled.
    odoo.write("account_move", ids["refunded"], state="draft")
    odoo.write("account_move", ids["open"], state="cancel")
    later = extract_databases(warehouse, settings, NEXT_DAY, sources)
    # (the cancelled invoice's line and instalment are read again, unchanged: only the draft's go)
    assert changed_rows(later) == {
        "invoices": 2,
        "invoice_lines": 1,
        "invoice_installments": 1,
        "payment_allocations": 2,
    }
    with psycopg.connect(warehouse) as conn:
        statuses = dict(conn.execute("select invoice_id, status from raw.invoices").fetchall())
    assert statuses == {str(ids["paid"]): "posted", str(ids["open"]): "cancelled"}
    removed = {(table, reason) for _, table, reason, _ in deletions(warehouse)}
    assert removed == {
        ("invoices", "missing_from_source"),
        ("invoice_lines", "missing_from_source"),
        ("invoice_installments", "missing_from_source"),
        ("payment_allocations", "missing_from_source"),
    }


def test_a_customer_made_by_its_first_invoice_is_extracted(warehouse, odoo, tmp_path):
    """Posting a first invoice raises the partner's customer_rank by SQL that leaves its
    write_date alone: the partner is taken when its invoices change."""
    newcomer = odoo.partner("Ningbo Newcomer", None, customer_rank=0)
    settings = make_settings(tmp_path, warehouse)
    sources = {"odoo": odoo.url}
    extract_databases(warehouse, settings, AS_OF, sources)
    assert rows(warehouse, "select count(*) from raw.customers") == [(0,)]
    odoo.invoice(newcomer, date(2026, 10, 20), [(501, 4, 25)])
    extract_databases(warehouse, settings, AS_OF, sources)
    assert rows(warehouse, "select customer_id from raw.customers") == [(str(newcomer),)]


def test_a_reconciliation_that_would_empty_a_table_is_refused(warehouse, erpnext, tmp_path):
    for number in range(12):
        erpnext.customer(f"CUST-{number:05d}", f"Customer {number}", "Distributor")
    settings = make_settings(tmp_path, warehouse)
    extract_databases(warehouse, settings, AS_OF, {"erpnext": erpnext.url})
    erpnext.run("delete from `tabCustomer`")
    with pytest.raises(StepFailed, match=r"no longer has 12 of the 12 rows.*nothing was removed"):
        extract_databases(warehouse, settings, NEXT_DAY, {"erpnext": erpnext.url})
    assert raw_counts(warehouse)["customers"] == 12
    with psycopg.connect(warehouse) as conn:
        status = conn.execute(
            "select status from audit.batches where batch_key = 'db:erpnext:customers' order by batch_id desc limit 1"
        ).fetchone()
    assert status == ("failed",)


def test_a_query_that_returns_unknown_columns_fails_naming_the_mapping(warehouse, erpnext, tmp_path):
    mapping_file = tmp_path / "broken.yml"
    mapping_file.write_text(
        "kind: database\ntables:\n  erp.customers:\n    watermark: _modified\n    query: |\n"
        "      select name as customer_id, customer_name, 'direct' as customer_type,\n"
        "          customer_group as segment, modified as _modified from `tabCustomer`\n"
    )
    erpnext.customer("CUST-00001", "Huadong Distribution", "Distributor")
    results = DatabaseExtractor(load_database_mapping(mapping_file), erpnext.url, warehouse).extract(AS_OF)
    assert results[0].status == "failed"
    assert "broken.yml" in results[0].message and "['segment']" in results[0].message
    assert raw_counts(warehouse)["customers"] == 0


def test_a_document_committed_late_is_not_skipped(warehouse, erpnext, tmp_path):
    """ERPNext stamps `modified` when the transaction starts: a document committed after an
    extract that already saw a later stamp has an older stamp than the watermark. The
    look-back takes it on the next run; one older than the look-back is taken by the weekly
    whole extract."""
    erpnext.customer("CUST-00001", "Huadong Distribution", "Distributor")
    erpnext.customer("CUST-00002", "Jiahe Supermarkets", "Retail Chain")
    settings = make_settings(tmp_path, warehouse)
    sources = {"erpnext": erpnext.url}
    extract_databases(warehouse, settings, AS_OF, sources)
    watermark = erpnext.query("select max(modified) from `tabCustomer`")[0][0]

    stamp = "update `tabCustomer` set modified = %s where name = %s"
    erpnext.customer("CUST-00003", "Mingda Factory", "Commercial")
    erpnext.run(stamp, (watermark - timedelta(minutes=5), "CUST-00003"))
    erpnext.customer("CUST-00004", "Nanfang Trading", "Commercial")
    erpnext.run(stamp, (watermark - timedelta(hours=3), "CUST-00004"))
    late = extract_databases(warehouse, settings, AS_OF, sources)
    assert changed_rows(late) == {"customers": 1}
    customers = rows(warehouse, "select customer_id from raw.customers order by 1")
    assert customers == [("CUST-00001",), ("CUST-00002",), ("CUST-00003",)]

    weekly = extract_databases(warehouse, settings, AS_OF + timedelta(days=7), sources)
    assert changed_rows(weekly) == {"customers": 1}
    assert rows(warehouse, "select count(*) from raw.customers") == [(4,)]


def test_a_query_ending_in_a_comment_extracts(warehouse, erpnext, tmp_path):
    mapping_file = tmp_path / "commented.yml"
    mapping_file.write_text(
        "kind: database\ntables:\n  erp.customers:\n    watermark: _modified\n    query: |\n"
        "      select name as customer_id, customer_name, 'direct' as customer_type,\n"
        "          modified as _modified from `tabCustomer`\n"
        "      -- every customer, whatever its group\n"
    )
    erpnext.customer("CUST-00001", "Huadong Distribution", "Distributor")
    mapping = load_database_mapping(mapping_file)
    first = DatabaseExtractor(mapping, erpnext.url, warehouse).extract(AS_OF)
    assert [r.status for r in first] == ["loaded"] and raw_counts(warehouse)["customers"] == 1
    again = DatabaseExtractor(mapping, erpnext.url, warehouse).extract(AS_OF)
    assert again[0].rows_landed == 0 and "1 read again unchanged" in again[0].message


@pytest.mark.slow
def test_kam_daily_pulls_both_erps_into_the_marts(kam_env, warehouse, erpnext, odoo):
    seed_erpnext(erpnext)
    ids = seed_odoo(odoo)
    env = kam_env | {
        "KAM_DATABASE_SOURCES": "erpnext=kam_erpnext,odoo=kam_odoo",
        "AIRFLOW_CONN_KAM_ERPNEXT": erpnext.url,
        "AIRFLOW_CONN_KAM_ODOO": odoo.url,
    }

    def open_items() -> dict[str, float]:
        with psycopg.connect(warehouse) as conn:
            return dict(conn.execute("select invoice_id, open_amount from marts.ar_open_items").fetchall())

    run_kam("run", "--date", AS_OF.isoformat(), env=env, check=True)
    # ERPNext: 500 - 100 credited - 180 paid; the 20 ERPNext allocated as a promotional
    # allowance is not an accepted reason code, so it is still owed. 300 unpaid.
    # Odoo: 400 - 150 paid; 250 - 50 refunded.
    assert open_items() == {
        "ACC-SINV-2026-00002": 220,
        "ACC-SINV-2026-00003": 300,
        str(ids["open"]): 250,
        str(ids["refunded"]): 200,
    }

    unchanged = run_kam(
        "extract", "erpnext", "--source-url", erpnext.url, "--date", AS_OF.isoformat(), env=env
    )
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "0 changed rows" in unchanged.stdout

    with psycopg.connect(warehouse) as conn:
        before_cancel = conn.execute("select max(batch_id) from audit.batches").fetchone()[0]
    erpnext.cancel("Sales Invoice", "ACC-SINV-2026-00003")
    odoo.write("account_move", ids["open"], state="cancel")
    run_kam("run", "--date", AS_OF.isoformat(), env=env, check=True)
    assert set(open_items()) == {"ACC-SINV-2026-00002", str(ids["refunded"])}
    with psycopg.connect(warehouse) as conn:
        last_run = conn.execute(
            "select mapping, target_tables[1], rows_landed from audit.batches "
            "where batch_id > %s and batch_key like 'db:%%' and rows_landed > 0 order by 1, 2",
            (before_cancel,),
        ).fetchall()
    # the lines of the cancelled invoices are read again, unchanged, and not loaded again
    assert last_run == [("erpnext", "invoices", 1), ("odoo", "invoices", 1)]
