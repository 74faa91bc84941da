"""Receivables aging marts on generated data and on the real IBM ledger."""

from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal

import pytest

from kam.ingest.files import Loader
from kam.ingest.mappings import load_mapping
from kam.pipeline import build_marts
from tests.conftest import make_settings, rows, scalar
from tests.test_loading import IBM_CSV, IBM_MAPPING


def test_bucket_columns_add_up_to_the_open_amount(built_warehouse):
    url = built_warehouse["url"]
    bucket_columns = [
        r[0]
        for r in rows(
            url,
            "select column_name from information_schema.columns where "
            "table_schema = 'marts' and table_name = 'ar_aging' and column_name like 'bucket_%' order by ordinal_position",
        )
    ]
    seeded = [r[0] for r in rows(url, "select bucket_name from staging.aging_buckets order by sort_order")]
    assert bucket_columns == [f"bucket_{name}" for name in seeded]
    mismatches = scalar(
        url, f"select count(*) from marts.ar_aging where {' + '.join(bucket_columns)} <> open_amount"
    )  # noqa: S608
    assert mismatches == 0
    assert scalar(url, "select count(*) from marts.ar_open_items") > 0
    assert scalar(url, "select sum(open_amount) from marts.ar_aging") == scalar(
        url, "select sum(open_amount) from marts.ar_open_items"
    )


def test_open_items_respect_the_as_of_date_and_cancellations(built_warehouse):
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    assert scalar(url, "select max(invoice_date) from marts.ar_open_items") <= as_of
    assert (
        scalar(
            url,
            "select count(*) from marts.ar_open_items o join raw.invoices i using (invoice_id) "
            "where i.status = 'cancelled'",
        )
        == 0
    )
    assert scalar(url, "select count(*) from marts.ar_open_items where open_amount <= 0") == 0
    assert scalar(url, "select count(distinct as_of_date) from marts.ar_open_items") == 1


def test_overdue_invoices_carry_escalation_from_the_seed(built_warehouse):
    url = built_warehouse["url"]
    levels = rows(
        url,
        "select escalation_level, min(days_past_due), bool_and(copy_finance_manager) "
        "from marts.overdue_invoices group by 1 order by 1",
    )
    seeded = rows(
        url,
        "select escalation_level, min_days_past_due, copy_finance_manager from staging.escalation_levels order by 1",
    )
    assert [level for level, _, _ in levels] == [level for level, _, _ in seeded]
    for (level, low, copied), (_, bound, copies) in zip(levels, seeded, strict=True):
        assert low >= bound and copied == copies, level
    assert scalar(url, "select count(*) from marts.overdue_invoices") == scalar(
        url, "select count(*) from marts.ar_open_items where days_past_due > 0"
    )


def test_aging_history_shows_published_runs_only(built_warehouse):
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    assert rows(url, "select distinct as_of_date from marts.ar_aging_daily") == [(as_of,)]
    assert scalar(url, "select count(*) from marts.ar_aging_daily") == scalar(
        url, "select count(*) from marts.ar_aging"
    )


def _independent_ibm_aging(as_of: date) -> dict[str, Decimal]:
    """Open AR per customer straight from the CSV: open when InvoiceDate <= D < SettledDate."""
    owed: dict[str, Decimal] = {}
    with open(IBM_CSV, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            invoiced = datetime.strptime(row["InvoiceDate"], "%d/%m/%Y").date()
            settled = datetime.strptime(row["SettledDate"], "%d/%m/%Y").date()
            if invoiced <= as_of < settled:
                owed[row["customerID"]] = owed.get(row["customerID"], Decimal(0)) + Decimal(
                    row["InvoiceAmount"]
                )
    return owed


@pytest.mark.slow
@pytest.mark.skipif(not IBM_CSV.exists(), reason="shared/data/real is not beside the repository")
@pytest.mark.parametrize("as_of", [date(2012, 6, 30), date(2013, 3, 15)])
def test_ibm_aging_matches_an_independent_computation(tmp_path, warehouse, as_of):
    Loader(warehouse, progress=lambda m: None).load_paths([IBM_CSV], mapping=load_mapping(IBM_MAPPING))
    build_marts(warehouse, make_settings(tmp_path, warehouse), as_of, progress=lambda m: None)
    mart = {
        c: a
        for c, a in rows(
            warehouse, "select customer_id, open_amount from marts_build.ar_aging where open_amount <> 0"
        )
    }
    expected = _independent_ibm_aging(as_of)
    assert mart == expected
    assert len(expected) > 10
