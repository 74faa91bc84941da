"""Small ERPs on the machine's real servers: ERPNext's tables on MariaDB, Odoo's on
PostgreSQL (tests/data/erp/*.sql), each in a database of its own with a read-only user, and
helpers that write documents the way the ERP does (a save bumps `modified`/`write_date`;
a cancel sets docstatus 2 or state 'cancel'; children take their parent's timestamp)."""

from __future__ import annotations

import itertools
import secrets
import socket
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.erp_schemas import erpnext_tables, odoo_tables

DATA = Path(__file__).parent / "data" / "erp"
MARIADB = ("127.0.0.1", 3306)
POSTGRES = ("127.0.0.1", 5432)


def reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
        return True
    except OSError:
        return False


def require(address: tuple[str, int], what: str) -> None:
    if not reachable(address):
        pytest.skip(
            f"no {what} server on {address[0]}:{address[1]} (.ci/run starts one); skipping the {what} tests"
        )


def statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


class Clock:
    """The ERP's clock: every save is one second after the previous one."""

    def __init__(self, start: datetime):
        self._ticks = (start + timedelta(seconds=i) for i in itertools.count())

    def now(self) -> datetime:
        return next(self._ticks)


class ErpNext:
    """ERPNext on MariaDB: its tables as Frappe builds them from the DocTypes
    (tests/erp_schemas.py), and documents submitted the way ERPNext submits them: the
    document, its children, and its Payment Ledger Entries (what the receivable report reads).
    Documents are named as ERPNext names them."""

    COMPANY = "Kam Trading"

    def __init__(self):
        import pymysql

        require(MARIADB, "MariaDB")
        self.database = f"kam_erpnext_{secrets.token_hex(4)}"
        self.reader, password = f"kam_reader_{secrets.token_hex(3)}", secrets.token_hex(8)
        self.admin = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)
        self.run(f"create database `{self.database}` character set utf8mb4")
        self.admin.select_db(self.database)
        for statement in erpnext_tables():
            self.run(statement)
        self.run(f"create user '{self.reader}'@'%' identified by '{password}'")
        self.run(f"grant select on `{self.database}`.* to '{self.reader}'@'%'")
        self.url = f"mysql://{self.reader}:{password}@{MARIADB[0]}:{MARIADB[1]}/{self.database}"
        self.clock = Clock(datetime(2026, 10, 1, 8, 0, 0, 125000))
        self._names = itertools.count(1)
        self.companies: dict[str, tuple[str, str]] = {}  # name -> (abbr, currency)

    def run(self, statement: str, params: tuple = ()) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(statement, params or None)

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with self.admin.cursor() as cursor:
            cursor.execute(statement, params or None)
            return list(cursor.fetchall())

    def insert(self, doctype: str, **values) -> None:
        columns = ", ".join(f"`{c}`" for c in values)
        marks = ", ".join(["%s"] * len(values))
        self.run(f"insert into `tab{doctype}` ({columns}) values ({marks})", tuple(values.values()))

    def child_name(self) -> str:
        return f"row-{next(self._names):05d}"

    def child(self, doctype: str, parent_doctype: str, parent: str, field: str, idx: int, **values) -> None:
        """A child table row, as Frappe stores one under its parent document."""
        self.insert(
            doctype,
            name=self.child_name(),
            parent=parent,
            parenttype=parent_doctype,
            parentfield=field,
            idx=idx,
            **values,
        )

    def close(self) -> None:
        self.run(f"drop database if exists `{self.database}`")
        self.run(f"drop user if exists '{self.reader}'@'%'")
        self.admin.close()

    # -- master data ----------------------------------------------------------------------

    def master_data(self) -> None:
        self.insert(
            "User", name="li.wei@example.com", first_name="Li", full_name="Li Wei", email="li.wei@example.com"
        )
        self.insert("Territory", name="China", territory_name="China", parent_territory="All Territories")
        self.insert("Territory", name="East China", territory_name="East China", parent_territory="China")
        self.insert(
            "Payment Terms Template Detail",
            name="ptd-1",
            parent="Net 30",
            parenttype="Payment Terms Template",
            parentfield="terms",
            idx=1,
            invoice_portion=100,
            due_date_based_on="Day(s) after invoice date",
            credit_days=30,
        )
        self.company(self.COMPANY, "KT", "CNY")

    def company(self, name: str, abbr: str, currency: str) -> None:
        self.insert(
            "Company",
            name=name,
            modified=self.clock.now(),
            company_name=name,
            abbr=abbr,
            default_currency=currency,
            country="China",
        )
        self.companies[name] = (abbr, currency)

    def customer(self, name: str, customer_name: str, group: str) -> None:
        now = self.clock.now()
        self.insert(
            "Customer",
            name=name,
            creation=now,
            modified=now,
            customer_name=customer_name,
            customer_type="Company",
            customer_group=group,
            territory="East China",
            account_manager="li.wei@example.com",
            payment_terms="Net 30",
        )

    # -- selling --------------------------------------------------------------------------

    def sales_order(
        self, name: str, customer: str, day: date, items: list[tuple], docstatus: int = 1
    ) -> None:
        """items: (item_code, qty, rate, delivered_qty)."""
        now = self.clock.now()
        total = sum(q * r for _, q, r, _ in items)
        self.insert(
            "Sales Order",
            name=name,
            creation=now,
            modified=now,
            docstatus=docstatus,
            customer=customer,
            company=self.COMPANY,
            transaction_date=day,
            status="To Deliver and Bill",
            currency="CNY",
            conversion_rate=1,
            grand_total=total,
            base_grand_total=total,
            per_delivered=100 * sum(d for *_, d in items) / max(sum(q for _, q, _, _ in items), 1),
        )
        for idx, (item, qty, rate, delivered) in enumerate(items, start=1):
            self.child(
                "Sales Order Item",
                "Sales Order",
                name,
                "items",
                idx,
                modified=now,
                docstatus=docstatus,
                item_code=item,
                item_name=item,
                qty=qty,
                rate=rate,
                amount=qty * rate,
                delivered_qty=delivered,
            )

    def delivery_note(self, name: str, customer: str, day: date, amount: float, order: str) -> None:
        self.insert(
            "Delivery Note",
            name=name,
            modified=self.clock.now(),
            docstatus=1,
            customer=customer,
            company=self.COMPANY,
            posting_date=day,
            territory="East China",
            currency="CNY",
            conversion_rate=1,
            grand_total=amount,
            base_grand_total=amount,
        )
        self.child(
            "Delivery Note Item",
            "Delivery Note",
            name,
            "items",
            1,
            against_sales_order=order,
        )

    # -- receivables ------------------------------------------------------------------------

    def ledger(
        self,
        voucher_type: str,
        voucher_no: str,
        day: date,
        party: str,
        company: str,
        against_type: str,
        against_no: str,
        amount: float,
        in_account_currency: float,
        account_currency: str,
        modified: datetime,
        due_date: date | None = None,
    ) -> None:
        """One Payment Ledger Entry, as ERPNext posts it on submit (debit positive)."""
        abbr, _ = self.companies[company]
        self.insert(
            "Payment Ledger Entry",
            name=self.child_name(),
            creation=modified,
            modified=modified,
            docstatus=1,
            posting_date=day,
            company=company,
            account_type="Receivable",
            account=f"Debtors - {abbr}",
            party_type="Customer",
            party=party,
            due_date=due_date,
            voucher_type=voucher_type,
            voucher_no=voucher_no,
            against_voucher_type=against_type,
            against_voucher_no=against_no,
            amount=amount,
            account_currency=account_currency,
            amount_in_account_currency=in_account_currency,
        )

    def sales_invoice(
        self,
        name: str,
        customer: str,
        day: date,
        items: list[tuple],
        docstatus: int = 1,
        return_against: str | None = None,
        company: str = COMPANY,
        currency: str | None = None,
        conversion_rate: float = 1.0,
        party_account_currency: str | None = None,
        disable_rounded_total: bool = False,
        update_outstanding_for_self: bool = True,
        paid_on_invoice: float = 0,
        write_off: float = 0,
        schedule: tuple = (),
    ) -> None:
        """items: (item_code, qty, rate); a return has negative quantities. schedule:
        (due_date, portion of the total) per instalment. paid_on_invoice: a POS payment."""
        now = self.clock.now()
        company_currency = self.companies[company][1]
        currency = currency or company_currency
        account_currency = party_account_currency or company_currency
        grand = round(sum(q * r for _, q, r in items), 2)
        rounded = 0.0 if disable_rounded_total else float(round(grand))
        total = grand if disable_rounded_total else rounded
        base_grand, base_total = round(grand * conversion_rate, 2), round(total * conversion_rate, 2)
        due = schedule[-1][0] if schedule else day + timedelta(days=30)
        self.insert(
            "Sales Invoice",
            name=name,
            creation=now,
            modified=now,
            docstatus=docstatus,
            naming_series="ACC-SINV-RET-.YYYY.-" if return_against else "ACC-SINV-.YYYY.-",
            customer=customer,
            company=company,
            posting_date=day,
            due_date=due,
            currency=currency,
            conversion_rate=conversion_rate,
            party_account_currency=account_currency,
            debit_to=f"Debtors - {self.companies[company][0]}",
            grand_total=grand,
            base_grand_total=base_grand,
            rounded_total=rounded,
            base_rounded_total=0.0 if disable_rounded_total else base_total,
            rounding_adjustment=0.0 if disable_rounded_total else round(rounded - grand, 2),
            disable_rounded_total=int(disable_rounded_total),
            is_pos=int(paid_on_invoice > 0),
            paid_amount=paid_on_invoice,
            write_off_amount=write_off,
            outstanding_amount=round(total - paid_on_invoice - write_off, 2),
            is_return=int(return_against is not None),
            return_against=return_against,
            update_outstanding_for_self=int(update_outstanding_for_self),
            status="Unpaid",
        )
        for idx, (item, qty, rate) in enumerate(items, start=1):
            self.child(
                "Sales Invoice Item",
                "Sales Invoice",
                name,
                "items",
                idx,
                modified=now,
                docstatus=docstatus,
                item_code=item,
                item_name=item,
                qty=qty,
                stock_qty=qty,
                rate=rate,
                amount=qty * rate,
                base_amount=qty * rate * conversion_rate,
                incoming_rate=abs(rate) * 0.6,
            )
        for idx, (due_date, portion) in enumerate(schedule, start=1):
            self.child(
                "Payment Schedule",
                "Sales Invoice",
                name,
                "payment_schedule",
                idx,
                modified=now,
                docstatus=docstatus,
                due_date=due_date,
                invoice_portion=portion * 100,
                payment_amount=round(total * portion, 2),
            )
        if docstatus != 1:
            return
        in_account = total if account_currency == currency else base_total
        against = name if (return_against is None or update_outstanding_for_self) else return_against
        self.ledger(
            "Sales Invoice",
            name,
            day,
            customer,
            company,
            "Sales Invoice",
            against,
            base_total,
            in_account,
            account_currency,
            now,
            due,
        )
        for settled in (paid_on_invoice, write_off):
            if settled:
                self.ledger(
                    "Sales Invoice",
                    name,
                    day,
                    customer,
                    company,
                    "Sales Invoice",
                    name,
                    -round(settled * conversion_rate, 2),
                    -settled,
                    account_currency,
                    now,
                )

    def payment_entry(
        self,
        name: str,
        customer: str,
        day: date,
        paid: float,
        allocations: dict,
        deductions: tuple = (),
        company: str = COMPANY,
        account_currency: str | None = None,
        exchange_rate: float = 1.0,
    ) -> None:
        """allocations: invoice -> amount (what it settles, deductions included, as ERPNext
        allocates); deductions: (account, amount in company currency)."""
        now = self.clock.now()
        account_currency = account_currency or self.companies[company][1]
        allocated = sum(allocations.values())
        deducted = sum(amount for _, amount in deductions)
        self.insert(
            "Payment Entry",
            name=name,
            modified=now,
            docstatus=1,
            payment_type="Receive",
            party_type="Customer",
            party=customer,
            company=company,
            posting_date=day,
            paid_from=f"Debtors - {self.companies[company][0]}",
            paid_from_account_currency=account_currency,
            paid_amount=paid,
            received_amount=paid,
            source_exchange_rate=exchange_rate,
            base_paid_amount=round(paid * exchange_rate, 2),
            total_allocated_amount=allocated,
            unallocated_amount=round(paid + deducted / exchange_rate - allocated, 2),
            mode_of_payment="Wire Transfer",
        )
        for idx, (invoice, amount) in enumerate(allocations.items(), start=1):
            self.child(
                "Payment Entry Reference",
                "Payment Entry",
                name,
                "references",
                idx,
                reference_doctype="Sales Invoice",
                reference_name=invoice,
                allocated_amount=amount,
            )
            rate = self.query("select conversion_rate from `tabSales Invoice` where name = %s", (invoice,))
            invoice_rate = (
                float(rate[0][0])
                if rate and account_currency != self.companies[company][1]
                else exchange_rate
            )
            self.ledger(
                "Payment Entry",
                name,
                day,
                customer,
                company,
                "Sales Invoice",
                invoice,
                -round(amount * invoice_rate, 2),
                -amount,
                account_currency,
                now,
            )
        for idx, (account, amount) in enumerate(deductions, start=1):
            self.child(
                "Payment Entry Deduction",
                "Payment Entry",
                name,
                "deductions",
                idx,
                account=account,
                cost_center="Main",
                amount=amount,
            )
        unallocated = round(paid + deducted / exchange_rate - allocated, 2)
        if unallocated:
            self.ledger(
                "Payment Entry",
                name,
                day,
                customer,
                company,
                "Payment Entry",
                name,
                -round(unallocated * exchange_rate, 2),
                -unallocated,
                account_currency,
                now,
            )

    def journal_entry(
        self,
        name: str,
        day: date,
        rows: list[tuple],
        voucher_type: str = "Journal Entry",
        company: str = COMPANY,
    ) -> None:
        """rows: (customer, against invoice or None, debit, credit) in the company's currency;
        a row with no customer is the other side (bank, write-off account)."""
        now = self.clock.now()
        currency = self.companies[company][1]
        self.insert(
            "Journal Entry",
            name=name,
            modified=now,
            docstatus=1,
            voucher_type=voucher_type,
            company=company,
            posting_date=day,
            total_debit=sum(r[2] for r in rows),
            total_credit=sum(r[3] for r in rows),
        )
        for idx, (customer, invoice, debit, credit) in enumerate(rows, start=1):
            self.child(
                "Journal Entry Account",
                "Journal Entry",
                name,
                "accounts",
                idx,
                account=f"Debtors - {self.companies[company][0]}"
                if customer
                else f"Bank - {self.companies[company][0]}",
                party_type="Customer" if customer else None,
                party=customer,
                account_currency=currency,
                debit_in_account_currency=debit,
                debit=debit,
                credit_in_account_currency=credit,
                credit=credit,
                reference_type="Sales Invoice" if invoice else None,
                reference_name=invoice,
            )
            if customer:
                self.ledger(
                    "Journal Entry",
                    name,
                    day,
                    customer,
                    company,
                    "Sales Invoice" if invoice else "Journal Entry",
                    invoice or name,
                    debit - credit,
                    debit - credit,
                    currency,
                    now,
                )

    def save(self, doctype: str, name: str, **changes) -> None:
        """Change a document the way a save does: the fields, and `modified`."""
        changes["modified"] = self.clock.now()
        assignments = ", ".join(f"`{column}` = %s" for column in changes)
        self.run(f"update `tab{doctype}` set {assignments} where name = %s", (*changes.values(), name))

    def cancel(self, doctype: str, name: str) -> None:
        """Cancel a submitted document: docstatus 2, and its ledger entries delinked."""
        now = self.clock.now()
        self.save(
            doctype, name, docstatus=2, **({"status": "Cancelled"} if doctype != "Payment Entry" else {})
        )
        self.run(
            "update `tabPayment Ledger Entry` set delinked = 1, modified = %s where voucher_type = %s and voucher_no = %s",
            (now, doctype, name),
        )

    def delete(self, doctype: str, name: str) -> None:
        self.run(f"delete from `tab{doctype}` where name = %s", (name,))

    # -- what ERPNext itself says is owed ------------------------------------------------------

    def outstanding(self) -> dict[str, tuple[float, float]]:
        """Per submitted invoice: its Payment Ledger sum in the party account's currency and the
        company's (ERPNext's Accounts Receivable)."""
        rows = self.query(
            """select against_voucher_no, sum(amount_in_account_currency), sum(amount)
               from `tabPayment Ledger Entry`
               where delinked = 0 and against_voucher_type = 'Sales Invoice'
                 and against_voucher_no in (select name from `tabSales Invoice` where is_return = 0 and docstatus = 1)
               group by against_voucher_no"""
        )
        return {name: (float(doc), float(company)) for name, doc, company in rows}

    def balances(self) -> dict[tuple[str, str], float]:
        """Per company and customer: the Payment Ledger sum in the company's currency (what the
        customer owes, net of unallocated payments and open credit notes)."""
        rows = self.query(
            "select company, party, sum(amount) from `tabPayment Ledger Entry` where delinked = 0 group by company, party"
        )
        return {(company, party): float(amount) for company, party, amount in rows}


class Odoo:
    """Odoo 17 on PostgreSQL. Records are created the way the ORM stores them."""

    def __init__(self):
        require(POSTGRES, "PostgreSQL")
        self.database = f"kam_odoo_{secrets.token_hex(4)}"
        self.reader, password = f"kam_reader_{secrets.token_hex(3)}", secrets.token_hex(8)
        server = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(self.database)))
            admin.execute(
                sql.SQL("create role {} login password {}").format(
                    sql.Identifier(self.reader), sql.Literal(password)
                )
            )
        self.admin = psycopg.connect(f"{server}/{self.database}", autocommit=True)
        for statement in statements(DATA / "odoo.sql") + odoo_tables():
            self.admin.execute(statement)
        for grant in (
            "grant connect on database {db} to {role}",
            "grant usage on schema public to {role}",
            "grant select on all tables in schema public to {role}",
        ):
            self.admin.execute(
                sql.SQL(grant).format(db=sql.Identifier(self.database), role=sql.Identifier(self.reader))
            )
        self.url = f"postgresql://{self.reader}:{password}@{POSTGRES[0]}:{POSTGRES[1]}/{self.database}"
        self.clock = Clock(datetime(2026, 10, 1, 9, 0, 0, 250000))

    def close(self) -> None:
        self.admin.close()
        server = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/postgres"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(self.database))
            )
            admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(self.reader)))

    def insert(self, table: str, **values) -> int:
        values.setdefault("write_date", self.clock.now())
        return self.admin.execute(
            sql.SQL("insert into {} ({}) values ({}) returning id").format(
                sql.Identifier(table),
                sql.SQL(", ").join(map(sql.Identifier, values)),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
            ),
            tuple(values.values()),
        ).fetchone()[0]

    def write(self, table: str, record_id: int, **changes) -> None:
        """Change a record the way the ORM's write does: the fields, and write_date."""
        changes["write_date"] = self.clock.now()
        self.admin.execute(
            sql.SQL("update {} set {} where id = %s").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes),
            ),
            (*changes.values(), record_id),
        )

    # -- records ----------------------------------------------------------------------------

    def master_data(self) -> None:
        china = self.insert("res_country", code="CN", name='{"en_US": "China"}')
        self.state = self.insert("res_country_state", country_id=china, code="SH", name="Shanghai")
        self.country = china
        self.tags = {
            tag: self.insert("res_partner_category", name=f'{{"en_US": "{tag}"}}', active=True)
            for tag in ("Distributor", "Retail Chain")
        }
        salesperson = self.insert(
            "res_partner", name="Zhang Min", email="zhang.min@example.com", **self.PARTNER_DEFAULTS
        )
        self.user = self.insert("res_users", login="zhang.min@example.com", partner_id=salesperson)
        self.currencies = {name: self.insert("res_currency", name=name) for name in ("CNY", "USD")}
        self.currency = self.currencies["CNY"]
        self.company = self.add_company("Kam Trading Shanghai", "CNY")
        self.outgoing = self.insert(
            "stock_picking_type", code="outgoing", name='{"en_US": "Delivery Orders"}'
        )

    # what each company gets: its receivable and sales accounts, its bank and sales journals
    JOURNAL = {"invoice_reference_type": "invoice", "invoice_reference_model": "odoo"}
    COMPANY_RECORDS = (
        (
            "receivable",
            "account_account",
            {
                "code": "121000",
                "name": '{"en_US": "Account Receivable"}',
                "account_type": "asset_receivable",
                "reconcile": True,
            },
        ),
        (
            "income",
            "account_account",
            {"code": "400000", "name": '{"en_US": "Product Sales"}', "account_type": "income"},
        ),
        ("bank", "account_journal", {"code": "BNK1", "name": '{"en_US": "Bank"}', "type": "bank", **JOURNAL}),
        (
            "sales",
            "account_journal",
            {"code": "INV", "name": '{"en_US": "Customer Invoices"}', "type": "sale", **JOURNAL},
        ),
    )

    def add_company(self, name: str, currency: str) -> int:
        company = self.insert("res_company", name=name, currency_id=self.currencies[currency])
        self.company_currency = getattr(self, "company_currency", {}) | {company: self.currencies[currency]}
        for attribute, table, values in self.COMPANY_RECORDS:
            if not hasattr(self, attribute):
                setattr(self, attribute, {})
            getattr(self, attribute)[company] = self.insert(table, **values, company_id=company)
        return company

    # the records of the modules a fresh database has (ids of uom.uom and stock.location)
    UNIT, STOCK, CUSTOMERS = 1, 8, 5
    # what the ORM's defaults put in a new partner (the columns have none)
    PARTNER_DEFAULTS = {
        "type": "contact",
        "active": True,
        "is_company": False,
        "customer_rank": 0,
        "supplier_rank": 0,
    }

    def partner(self, name: str, tag: str | None, parent: int | None = None, customer_rank: int = 1) -> int:
        now = self.clock.now()
        partner = self.insert(
            "res_partner",
            **self.PARTNER_DEFAULTS
            | {"name": name, "is_company": True, "parent_id": parent, "customer_rank": customer_rank},
            user_id=self.user,
            state_id=self.state,
            country_id=self.country,
            create_date=now,
            write_date=now,
        )
        self.admin.execute("update res_partner set commercial_partner_id = id where id = %s", (partner,))
        if tag:
            self.insert_rel(self.tags[tag], partner)
        return partner

    def contact(self, name: str, company: int) -> int:
        """A person at a customer company: Odoo bills the company (its commercial partner)."""
        return self.insert(
            "res_partner",
            **self.PARTNER_DEFAULTS,
            name=name,
            parent_id=company,
            commercial_partner_id=company,
            user_id=self.user,
            create_date=self.clock.now(),
        )

    def insert_rel(self, category: int, partner: int) -> None:
        self.admin.execute(
            "insert into res_partner_res_partner_category_rel (category_id, partner_id) values (%s, %s)",
            (category, partner),
        )

    def sale_order(
        self, partner: int, day: date, lines: list[tuple], state: str = "sale"
    ) -> tuple[int, list[int]]:
        """lines: (product_id, qty, price, delivered). Returns the order id and line ids."""
        order = self.insert(
            "sale_order",
            name=f"S{self.clock.now():%H%M%S}",
            partner_id=partner,
            partner_invoice_id=partner,
            partner_shipping_id=partner,
            company_id=self.company,
            date_order=datetime.combine(day, datetime.min.time()),
            state=state,
            invoice_status="to invoice",
            currency_id=self.currency,
            amount_total=sum(q * p for _, q, p, _ in lines),
        )
        line_ids = [
            self.insert(
                "sale_order_line",
                order_id=order,
                sequence=10 * i,
                name=f"[{product}] product {product}",
                product_id=product,
                product_uom=self.UNIT,
                product_uom_qty=qty,
                price_unit=price,
                customer_lead=0,
                qty_delivered=delivered,
                company_id=self.company,
                order_partner_id=partner,
                state=state,
            )
            for i, (product, qty, price, delivered) in enumerate(lines, start=1)
        ]
        return order, line_ids

    def delivery(self, order: int, partner: int, day: date, moves: list[tuple]) -> int:
        """moves: (sale_line_id, qty)."""
        picking = self.insert(
            "stock_picking",
            name=f"WH/OUT/{self.clock.now():%H%M%S}",
            partner_id=partner,
            company_id=self.company,
            sale_id=order,
            move_type="direct",
            location_id=self.STOCK,
            location_dest_id=self.CUSTOMERS,
            picking_type_id=self.outgoing,
            state="done",
            date_done=datetime.combine(day, datetime.min.time()),
        )
        for sale_line, qty in moves:
            product = self.admin.execute(
                "select product_id from sale_order_line where id = %s", (sale_line,)
            ).fetchone()[0]
            self.insert(
                "stock_move",
                name=f"product {product}",
                picking_id=picking,
                sale_line_id=sale_line,
                product_id=product,
                product_uom=self.UNIT,
                product_uom_qty=qty,
                quantity=qty,
                date=datetime.combine(day, datetime.min.time()),
                company_id=self.company,
                location_id=self.STOCK,
                location_dest_id=self.CUSTOMERS,
                procure_method="make_to_stock",
                state="done",
            )
        return picking

    def _receivable_line(
        self,
        move: int,
        company: int,
        partner: int,
        day: date,
        due: date,
        amount_currency: float,
        balance: float,
        currency: int,
    ) -> int:
        return self.insert(
            "account_move_line",
            move_id=move,
            company_id=company,
            account_id=self.receivable[company],
            partner_id=partner,
            display_type="payment_term",
            parent_state="posted",
            date=day,
            date_maturity=due,
            currency_id=currency,
            company_currency_id=self.company_currency[company],
            debit=max(balance, 0),
            credit=max(-balance, 0),
            balance=balance,
            amount_currency=amount_currency,
            amount_residual=balance,
            amount_residual_currency=amount_currency,
            reconciled=False,
        )

    def invoice(
        self,
        partner: int,
        day: date,
        lines: list[tuple],
        move_type: str = "out_invoice",
        reversed_entry: int | None = None,
        origin: str | None = None,
        currency: str = "CNY",
        rate: float = 1.0,
        company: int | None = None,
        terms: tuple = (),
    ) -> int:
        """lines: (product_id, qty, price). A posted customer invoice (or refund) with its
        product lines and one receivable line per payment term ((due date, share), ...; one
        line due in 30 days by default). Posting raises the customer's rank as Odoo does, by
        SQL that leaves write_date alone."""
        company = company or self.company
        sign = 1 if move_type == "out_invoice" else -1
        total = round(sum(q * p for _, q, p in lines), 2)
        terms = terms or ((day + timedelta(days=30), 1.0),)
        commercial = self.admin.execute(
            "select coalesce(commercial_partner_id, id) from res_partner where id = %s", (partner,)
        ).fetchone()[0]
        move = self.insert(
            "account_move",
            name=f"{'INV' if sign > 0 else 'RINV'}/2026/{self.clock.now():%H%M%S}",
            move_type=move_type,
            state="posted",
            partner_id=partner,
            commercial_partner_id=commercial,
            company_id=company,
            journal_id=self.sales[company],
            auto_post="no",
            date=day,
            invoice_date=day,
            invoice_date_due=terms[-1][0],
            invoice_origin=origin,
            currency_id=self.currencies[currency],
            amount_total=total,
            amount_total_signed=sign * round(total * rate, 2),
            amount_residual=total,
            amount_residual_signed=sign * round(total * rate, 2),
            reversed_entry_id=reversed_entry,
        )
        for product, qty, price in lines:
            amount = round(qty * price, 2)
            balance = -sign * round(amount * rate, 2)  # income: credited on an invoice
            self.insert(
                "account_move_line",
                move_id=move,
                company_id=company,
                account_id=self.income[company],
                product_id=product,
                quantity=qty,
                price_unit=price,
                price_subtotal=amount,
                price_total=amount,
                display_type="product",
                parent_state="posted",
                date=day,
                currency_id=self.currencies[currency],
                company_currency_id=self.company_currency[company],
                debit=max(balance, 0),
                credit=max(-balance, 0),
                balance=balance,
                amount_currency=-sign * amount,
            )
        left, left_company = total, round(total * rate, 2)
        for index, (due, share) in enumerate(terms):
            last = index == len(terms) - 1
            part = left if last else round(total * share, 2)
            part_company = left_company if last else round(part * rate, 2)
            left, left_company = round(left - part, 2), round(left_company - part_company, 2)
            self._receivable_line(
                move,
                company,
                commercial,
                day,
                due,
                sign * part,
                sign * part_company,
                self.currencies[currency],
            )
        self.admin.execute(
            "update res_partner set customer_rank = customer_rank + 1 where id = %s", (commercial,)
        )
        return move

    def _lines_of(self, move: int) -> list[tuple]:
        return self.admin.execute(
            "select id, amount_residual, amount_residual_currency from account_move_line "
            "where move_id = %s and account_id is not null and display_type = 'payment_term' order by date_maturity, id",
            (move,),
        ).fetchall()

    def reconcile(self, credit_move: int, invoice: int, amount: float, rate: float | None = None) -> None:
        """Match `amount` (the invoice's currency) of a credit (payment, refund, entry) with an
        invoice, earliest terms first, keeping every residual as Odoo's reconciliation does."""
        day = self.admin.execute("select date from account_move where id = %s", (credit_move,)).fetchone()[0]
        credit_line = self._lines_of(credit_move)[0][0]
        for line, residual, residual_currency in self._lines_of(invoice):
            if amount <= 0:
                break
            part = min(float(residual_currency), amount)
            if part <= 0:
                continue
            line_rate = float(residual) / float(residual_currency)
            part_company = round(part * (line_rate if rate is None else rate), 2)
            now = self.clock.now()
            self.insert(
                "account_partial_reconcile",
                debit_move_id=line,
                credit_move_id=credit_line,
                amount=part_company,
                debit_amount_currency=part,
                credit_amount_currency=part,
                company_id=self.company,
                max_date=day,
                write_date=now,
            )
            for changed, company_part, currency_part in (
                (line, -part_company, -part),
                (credit_line, part_company, part),
            ):
                self.admin.execute(
                    "update account_move_line set amount_residual = amount_residual + %s, "
                    "amount_residual_currency = amount_residual_currency + %s, "
                    "reconciled = (amount_residual_currency + %s = 0), write_date = %s where id = %s",
                    (company_part, currency_part, currency_part, now, changed),
                )
            amount = round(amount - part, 2)
        for move in (invoice, credit_move):
            self.admin.execute(
                "update account_move set amount_residual = (select abs(sum(amount_residual_currency)) from account_move_line "
                "where move_id = %s and display_type = 'payment_term'), write_date = %s where id = %s",
                (move, self.clock.now(), move),
            )

    def payment(
        self,
        partner: int,
        day: date,
        amount: float,
        reconcile: dict[int, float],
        currency: str = "CNY",
        rate: float = 1.0,
        with_payment: bool = True,
    ) -> int:
        """A posted inbound customer payment (with_payment: an account.payment; without, an
        entry of the bank reconciliation) reconciled with invoices (invoice move -> amount).
        Returns the journal entry."""
        move = self.insert(
            "account_move",
            name=f"{'PBNK1' if with_payment else 'BNK1'}/2026/{self.clock.now():%H%M%S}",
            move_type="entry",
            state="posted",
            partner_id=partner,
            commercial_partner_id=partner,
            company_id=self.company,
            journal_id=self.bank[self.company],
            auto_post="no",
            date=day,
            currency_id=self.currencies[currency],
        )
        self._receivable_line(
            move,
            self.company,
            partner,
            day,
            day,
            -amount,
            -round(amount * rate, 2),
            self.currencies[currency],
        )
        if with_payment:
            self.insert(
                "account_payment",
                move_id=move,
                amount=amount,
                payment_type="inbound",
                partner_type="customer",
            )
        for invoice, allocated in reconcile.items():
            self.reconcile(move, invoice, allocated, rate)
        return move

    # -- what Odoo itself says is owed -----------------------------------------------------------

    def outstanding(self) -> dict[str, tuple[float, float]]:
        """Per posted invoice: the residual of its receivable lines, in its currency and the company's."""
        found = self.admin.execute(
            """select am.id::text, sum(aml.amount_residual_currency), sum(aml.amount_residual)
               from account_move am join account_move_line aml on aml.move_id = am.id
               join account_account acc on acc.id = aml.account_id and acc.account_type = 'asset_receivable'
               where am.move_type = 'out_invoice' and am.state = 'posted' group by am.id"""
        ).fetchall()
        return {move: (float(document), float(company)) for move, document, company in found}

    def balances(self) -> dict[tuple[str, str], float]:
        """Per company and commercial partner: the receivable residual in the company's currency."""
        found = self.admin.execute(
            """select aml.company_id::text, p.commercial_partner_id::text, sum(aml.amount_residual)
               from account_move_line aml join account_account acc on acc.id = aml.account_id
               join account_move am on am.id = aml.move_id join res_partner p on p.id = aml.partner_id
               where acc.account_type = 'asset_receivable' and am.state = 'posted'
               group by 1, 2"""
        ).fetchall()
        return {(company, partner): float(amount) for company, partner, amount in found}
