"""Receivables that equal the ERP's own outstanding. ERPNext books on ERPNext's own tables
(built from its DocTypes, tests/erp_schemas.py), Odoo books on Odoo 17's tables, each posted
the way the ERP posts them, extracted by mappings/<erp>.yml and run through `kam run`. For
every invoice the mart's open amount is the ERP's (ERPNext: the Payment Ledger sum; Odoo: the
residual of the receivable lines), in the invoice's currency and the company's; for every
customer and company, what the aging says is owed net of unapplied credit is the customer's
balance in the ERP."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import psycopg
import pytest

from tests.conftest import rows, run_kam
from tests.erp_fixtures import ErpNext, Odoo

pytestmark = pytest.mark.slow

AS_OF = date(2026, 10, 31)
EXPORT = "Kam Export"


def open_by_invoice(url: str) -> dict[str, tuple[float, float]]:
    """Per invoice (its instalments added up): open in its currency and the company's."""
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for invoice, document, company in rows(
        url, "select invoice_id, open_document_amount, open_amount from marts.ar_open_items"
    ):
        found[invoice][0] += float(document)
        found[invoice][1] += float(company)
    return {
        invoice: (round(document, 2), round(company, 2)) for invoice, (document, company) in found.items()
    }


def owed_by_book(url: str) -> dict[tuple[str, str], tuple[float, float, str]]:
    """Per company and customer: open, unapplied credit, and the company's currency."""
    return {
        (company, customer): (float(open_amount), float(unapplied), currency)
        for company, customer, open_amount, unapplied, currency in rows(
            url,
            "select company_id, customer_id, open_amount, unapplied_cash, company_currency from marts.ar_aging",
        )
    }


def still_owed(outstanding: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    return {invoice: amounts for invoice, amounts in outstanding.items() if amounts[0] >= 0.01}


def net(books: dict[tuple[str, str], tuple[float, float, str]], balances: dict) -> dict:
    """The aging's open less unapplied credit, for the books the ERP has a balance in."""
    return {key: round(owed[0] - owed[1], 2) for key, owed in books.items() if key in balances}


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
    erp_open = still_owed(erpnext.outstanding())
    assert open_by_invoice(warehouse) == erp_open
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
    aging = owed_by_book(warehouse)
    balances = erpnext.balances()
    assert net(aging, balances) == balances
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


def odoo_book(erp: Odoo) -> dict[str, int]:
    """One of each way Odoo settles an invoice (the names say which)."""
    wholesale = erp.partner("Suzhou Wholesale", "Distributor")
    branch = erp.partner("Suzhou Wholesale Wuxi", None, parent=wholesale)  # a company under a parent company
    buyer = erp.contact("Li Lei", wholesale)
    ids = {"wholesale": wholesale, "branch": branch}
    ids["paid_in_part"] = erp.invoice(wholesale, date(2026, 8, 5), [(501, 40, 25)])
    erp.payment(wholesale, date(2026, 9, 5), 400, {ids["paid_in_part"]: 400})
    # settled in the bank reconciliation, with no account.payment
    ids["bank_matched"] = erp.invoice(branch, date(2026, 8, 20), [(502, 10, 50)])
    erp.payment(branch, date(2026, 9, 10), 500, {ids["bank_matched"]: 500}, with_payment=False)
    # dollars, paid in part
    ids["dollars"] = erp.invoice(wholesale, date(2026, 9, 1), [(501, 40, 25)], currency="USD", rate=7.1)
    erp.payment(wholesale, date(2026, 9, 20), 300, {ids["dollars"]: 300}, currency="USD", rate=7.1)
    # a refund matched with the invoice it credits, and one nobody matched yet
    ids["refunded"] = erp.invoice(wholesale, date(2026, 9, 2), [(501, 32, 25)])
    refund = erp.invoice(
        wholesale, date(2026, 9, 12), [(501, 8, 25)], move_type="out_refund", reversed_entry=ids["refunded"]
    )
    erp.reconcile(refund, ids["refunded"], 200)
    erp.invoice(wholesale, date(2026, 9, 15), [(501, 4, 25)], move_type="out_refund")
    # two payment terms, the first overdue on the as-of date and paid in part
    ids["two_terms"] = erp.invoice(
        wholesale,
        date(2026, 8, 1),
        [(501, 80, 25)],
        terms=((date(2026, 8, 31), 0.5), (date(2026, 11, 30), 0.5)),
    )
    erp.payment(wholesale, date(2026, 9, 1), 500, {ids["two_terms"]: 500})
    # bought by a person at the customer, with a discount line, for two orders
    ids["order"], _ = erp.sale_order(wholesale, date(2026, 9, 28), [(501, 10, 25, 10)])
    (order_name,) = erp.admin.execute("select name from sale_order where id = %s", (ids["order"],)).fetchone()
    ids["by_contact"] = erp.invoice(
        buyer, date(2026, 10, 1), [(501, 10, 25), (999, 1, -20)], origin=f"{order_name}, S99999"
    )
    # a second company, in its own currency
    ids["hong_kong"] = erp.add_company("Kam Trading Hong Kong", "USD")
    ids["in_hong_kong"] = erp.invoice(wholesale, date(2026, 10, 2), [(501, 12, 25)], company=ids["hong_kong"])
    return ids


def test_odoo_receivables_equal_its_residuals(kam_env, warehouse, odoo):
    ids = odoo_book(odoo)
    env = kam_env | {"KAM_DATABASE_SOURCES": "odoo=kam_odoo", "AIRFLOW_CONN_KAM_ODOO": odoo.url}
    run_kam("run", "--date", AS_OF.isoformat(), env=env, check=True)

    assert rows(warehouse, "select count(*) from audit.quarantine") == [(0,)]
    erp_open = still_owed(odoo.outstanding())
    assert open_by_invoice(warehouse) == erp_open
    assert erp_open == {
        str(ids["paid_in_part"]): (600, 600),
        str(ids["dollars"]): (700, 4970),
        str(ids["refunded"]): (600, 600),
        str(ids["two_terms"]): (1500, 1500),
        str(ids["by_contact"]): (230, 230),
        str(ids["in_hong_kong"]): (300, 300),
    }
    aging = owed_by_book(warehouse)
    balances = odoo.balances()
    assert net(aging, balances) == balances
    company = str(odoo.company)
    assert aging[(company, str(ids["wholesale"]))][1] == 100  # the refund nobody matched
    assert aging[(company, str(ids["branch"]))] == (0, 0, "CNY")  # a customer of its own, settled
    assert aging[(str(ids["hong_kong"]), str(ids["wholesale"]))] == (300, 0, "USD")

    assert rows(
        warehouse,
        "select installment_no, due_date, open_amount from marts.ar_open_items "
        "where invoice_id = %s order by installment_no",
        (str(ids["two_terms"]),),
    ) == [(1, date(2026, 8, 31), 500), (2, date(2026, 11, 30), 1000)]
    with psycopg.connect(warehouse) as conn:
        contact_invoice = conn.execute(
            "select customer_id, order_id from raw.invoices where invoice_id = %s", (str(ids["by_contact"]),)
        ).fetchone()
        discount = conn.execute(
            "select amount from raw.invoice_lines where invoice_id = %s and product_id = '999'",
            (str(ids["by_contact"]),),
        ).fetchone()
    assert contact_invoice == (str(ids["wholesale"]), str(ids["order"]))  # the first of its orders
    assert discount == (-20,)
