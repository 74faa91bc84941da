"""Receivables that equal the ERP's own outstanding: ERPNext books built on ERPNext's own
tables (its DocTypes, tests/erp_schemas.py), posted the way ERPNext posts them, extracted by
mappings/erpnext.yml and run through `kam run`. For every invoice the mart's open amount is
the invoice's Payment Ledger sum, in the party account's currency and the company's; for
every customer and company what the aging says is owed net of unapplied credit is the
customer's ledger balance."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import psycopg
import pytest

from tests.conftest import rows, run_kam
from tests.erp_fixtures import ErpNext

pytestmark = pytest.mark.slow

AS_OF = date(2026, 10, 31)
EXPORT = "Kam Export"


@pytest.fixture
def erpnext():
    erp = ErpNext()
    try:
        erp.master_data()
        yield erp
    finally:
        erp.close()


def book(erp: ErpNext) -> None:
    """One of each way ERPNext settles an invoice (the names say which)."""
    erp.company(EXPORT, "KE", "USD")
    erp.customer("CUST-00001", "Huadong Distribution", "Distributor")
    erp.customer("CUST-00002", "Jiahe Supermarkets", "Retail Chain")
    erp.customer("CUST-00003", "Mingda Factory", "Commercial")
    # booked on the rounded total: 999.60 asks 1,000
    erp.sales_invoice("ACC-SINV-2026-00001", "CUST-00001", date(2026, 8, 1), [("WIDGET", 7, 142.8)])
    # a dollar invoice of a yuan company, on a dollar receivable account, paid in part
    erp.sales_invoice(
        "ACC-SINV-2026-00002",
        "CUST-00002",
        date(2026, 8, 10),
        [("WIDGET", 10, 100)],
        currency="USD",
        conversion_rate=7.1,
        party_account_currency="USD",
    )
    erp.payment_entry(
        "ACC-PAY-2026-00001",
        "CUST-00002",
        date(2026, 9, 1),
        400,
        {"ACC-SINV-2026-00002": 400},
        account_currency="USD",
        exchange_rate=7.1,
    )
    # a bank receipt booked as a Journal Entry
    erp.sales_invoice("ACC-SINV-2026-00003", "CUST-00001", date(2026, 9, 1), [("WIDGET", 50, 100)])
    erp.journal_entry(
        "ACC-JV-2026-00001",
        date(2026, 9, 20),
        [("CUST-00001", "ACC-SINV-2026-00003", 0, 2000), (None, None, 2000, 0)],
        voucher_type="Bank Entry",
    )
    # paid at the till (POS), inside the invoice
    erp.sales_invoice(
        "ACC-SINV-2026-00004", "CUST-00003", date(2026, 9, 5), [("WIDGET", 12, 100)], paid_on_invoice=1200
    )
    # a write-off on the invoice, and another by a Write Off Entry
    erp.sales_invoice(
        "ACC-SINV-2026-00005", "CUST-00003", date(2026, 9, 6), [("WIDGET", 10, 100)], write_off=30
    )
    erp.journal_entry(
        "ACC-JV-2026-00002",
        date(2026, 10, 1),
        [("CUST-00003", "ACC-SINV-2026-00005", 0, 70), (None, None, 70, 0)],
        voucher_type="Write Off Entry",
    )
    # a return that keeps its own outstanding (ERPNext's default), later applied in part to
    # another invoice by a Journal Entry
    erp.sales_invoice("ACC-SINV-2026-00006", "CUST-00002", date(2026, 9, 10), [("WIDGET", 20, 100)])
    erp.sales_invoice(
        "ACC-SINV-RET-2026-00001",
        "CUST-00002",
        date(2026, 9, 15),
        [("WIDGET", -5, 100)],
        return_against="ACC-SINV-2026-00006",
    )
    erp.sales_invoice("ACC-SINV-2026-00007", "CUST-00002", date(2026, 9, 20), [("WIDGET", 10, 100)])
    erp.journal_entry(
        "ACC-JV-2026-00003",
        date(2026, 10, 5),
        [("CUST-00002", "ACC-SINV-RET-2026-00001", 300, 0), ("CUST-00002", "ACC-SINV-2026-00007", 0, 300)],
        voucher_type="Credit Note",
    )
    # a return that reduces the invoice it returns
    erp.sales_invoice("ACC-SINV-2026-00008", "CUST-00001", date(2026, 9, 25), [("WIDGET", 10, 100)])
    erp.sales_invoice(
        "ACC-SINV-RET-2026-00002",
        "CUST-00001",
        date(2026, 9, 28),
        [("WIDGET", -2, 100)],
        return_against="ACC-SINV-2026-00008",
        update_outstanding_for_self=False,
    )
    # short-paid with an accepted shortage claim deducted: ERPNext allocates cash and claim
    erp.sales_invoice("ACC-SINV-2026-00009", "CUST-00003", date(2026, 10, 1), [("WIDGET", 10, 100)])
    erp.payment_entry(
        "ACC-PAY-2026-00002",
        "CUST-00003",
        date(2026, 10, 10),
        900,
        {"ACC-SINV-2026-00009": 1000},
        (("Shortage Claims - KT", 100),),
    )
    # the second company, in its own currency
    erp.sales_invoice(
        "ACC-SINV-2026-00010", "CUST-00001", date(2026, 10, 2), [("WIDGET", 3, 100)], company=EXPORT
    )
    # an advance nobody allocated yet, and a payment cancelled after it was made
    erp.payment_entry("ACC-PAY-2026-00003", "CUST-00001", date(2026, 10, 15), 200, {})
    erp.payment_entry(
        "ACC-PAY-2026-00004", "CUST-00001", date(2026, 10, 16), 100, {"ACC-SINV-2026-00001": 100}
    )
    erp.cancel("Payment Entry", "ACC-PAY-2026-00004")
    # a discount line, negative as ERPNext books it
    erp.sales_invoice(
        "ACC-SINV-2026-00011", "CUST-00001", date(2026, 10, 3), [("WIDGET", 10, 100), ("DISCOUNT", 1, -50)]
    )
    # two instalments: the first overdue on the as-of date, the second not due (the
    # invoice's due date is the last one's), part-paid
    erp.sales_invoice(
        "ACC-SINV-2026-00012",
        "CUST-00003",
        date(2026, 8, 1),
        [("WIDGET", 30, 100)],
        schedule=((date(2026, 8, 31), 0.5), (date(2026, 11, 30), 0.5)),
    )
    erp.payment_entry(
        "ACC-PAY-2026-00005", "CUST-00003", date(2026, 9, 1), 1000, {"ACC-SINV-2026-00012": 1000}
    )


def test_erpnext_receivables_equal_its_payment_ledger(kam_env, warehouse, erpnext, tmp_path):
    book(erpnext)
    landing = tmp_path / "home" / "landing"
    landing.mkdir(parents=True)
    (landing / "exchange_rates.csv").write_text("currency,rate_date,rate\nUSD,2026-10-30,7.3\n")
    env = kam_env | {"KAM_DATABASE_SOURCES": "erpnext=kam_erpnext", "AIRFLOW_CONN_KAM_ERPNEXT": erpnext.url}
    run_kam("run", "--date", AS_OF.isoformat(), env=env, check=True)

    assert rows(warehouse, "select count(*) from audit.quarantine") == [(0,)]
    open_items: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for invoice, document, company in rows(
        warehouse, "select invoice_id, open_document_amount, open_amount from marts.ar_open_items"
    ):
        open_items[invoice][0] += float(document)
        open_items[invoice][1] += float(company)
    erp_open = {invoice: amounts for invoice, amounts in erpnext.outstanding().items() if amounts[0] >= 0.01}
    assert {i: tuple(round(a, 2) for a in amounts) for i, amounts in open_items.items()} == erp_open
    assert erp_open == {
        "ACC-SINV-2026-00001": (1000, 1000),  # the rounded total; the cancelled payment settles nothing
        "ACC-SINV-2026-00002": (600, 4260),  # dollars, and yuan at the invoice's rate
        "ACC-SINV-2026-00003": (3000, 3000),
        "ACC-SINV-2026-00005": (900, 900),
        "ACC-SINV-2026-00006": (2000, 2000),  # its return keeps its own outstanding
        "ACC-SINV-2026-00007": (700, 700),
        "ACC-SINV-2026-00008": (800, 800),
        "ACC-SINV-2026-00010": (300, 300),
        "ACC-SINV-2026-00011": (950, 950),
        "ACC-SINV-2026-00012": (2000, 2000),
    }

    aging = {
        (company, customer): (float(open_amount), float(unapplied), currency)
        for company, customer, open_amount, unapplied, currency in rows(
            warehouse,
            "select company_id, customer_id, open_amount, unapplied_cash, company_currency from marts.ar_aging",
        )
    }
    balances = erpnext.balances()
    assert {key: round(a[0] - a[1], 2) for key, a in aging.items() if key in balances} == balances
    assert aging[(EXPORT, "CUST-00001")] == (300, 0, "USD")
    assert aging[("Kam Trading", "CUST-00002")] == (4260 + 2000 + 700, 200, "CNY")  # the return's 200 left
    assert aging[("Kam Trading", "CUST-00001")][1] == 200  # the advance

    (dollar,) = rows(
        warehouse,
        "select document_currency, company_currency, revalued_open_amount, revaluation_difference "
        "from marts.ar_open_items where invoice_id = 'ACC-SINV-2026-00002'",
    )
    assert dollar == ("USD", "CNY", 4380, 120)  # 600 dollars at 7.3 on the as-of date

    assert rows(
        warehouse,
        "select installment_no, due_date, open_amount, aging_bucket from marts.ar_open_items "
        "where invoice_id = 'ACC-SINV-2026-00012' order by installment_no",
    ) == [(1, date(2026, 8, 31), 500, "61_90"), (2, date(2026, 11, 30), 1500, "not_due")]
    assert rows(
        warehouse,
        "select installment_no, days_past_due from marts.overdue_invoices where invoice_id = 'ACC-SINV-2026-00012'",
    ) == [(1, 61)]

    with psycopg.connect(warehouse) as conn:
        deduction = conn.execute("select reason_code, amount from raw.payment_deductions").fetchall()
        allocation = conn.execute(
            "select amount from raw.payment_allocations where payment_id = 'ACC-PAY-2026-00002'"
        ).fetchone()
        discount = conn.execute(
            "select amount from raw.invoice_lines where invoice_id = 'ACC-SINV-2026-00011' and product_id = 'DISCOUNT'"
        ).fetchone()
    assert deduction == [("Shortage Claims", 100)]
    assert allocation == (900,)  # the cash; the claim is counted once, as a deduction
    assert discount == (-50,)
