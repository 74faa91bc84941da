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
    """ERPNext on MariaDB. Documents are named like ERPNext names them."""

    def __init__(self):
        import pymysql

        require(MARIADB, "MariaDB")
        self.database = f"kam_erpnext_{secrets.token_hex(4)}"
        self.reader, password = f"kam_reader_{secrets.token_hex(3)}", secrets.token_hex(8)
        self.admin = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)
        self.run(f"create database `{self.database}` character set utf8mb4")
        self.admin.select_db(self.database)
        for statement in statements(DATA / "erpnext.sql"):
            self.run(statement)
        self.run(f"create user '{self.reader}'@'%' identified by '{password}'")
        self.run(f"grant select on `{self.database}`.* to '{self.reader}'@'%'")
        self.url = f"mysql://{self.reader}:{password}@{MARIADB[0]}:{MARIADB[1]}/{self.database}"
        self.clock = Clock(datetime(2026, 10, 1, 8, 0, 0, 125000))
        self._names = itertools.count(1)

    def run(self, statement: str, params: tuple = ()) -> None:
        with self.admin.cursor() as cursor:
            cursor.execute(statement, params or None)

    def insert(self, doctype: str, **values) -> None:
        columns = ", ".join(values)
        marks = ", ".join(["%s"] * len(values))
        self.run(f"insert into `tab{doctype}` ({columns}) values ({marks})", tuple(values.values()))

    def child_name(self) -> str:
        return f"row-{next(self._names):05d}"

    def close(self) -> None:
        self.run(f"drop database if exists `{self.database}`")
        self.run(f"drop user if exists '{self.reader}'@'%'")
        self.admin.close()

    # -- documents ------------------------------------------------------------------------

    def master_data(self) -> None:
        self.insert("User", name="li.wei@example.com", full_name="Li Wei", email="li.wei@example.com")
        self.insert("Territory", name="China", parent_territory="All Territories")
        self.insert("Territory", name="East China", parent_territory="China")
        self.insert("Payment Terms Template Detail", name="ptd-1", parent="Net 30", idx=1, credit_days=30)

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

    def sales_order(
        self, name: str, customer: str, day: date, items: list[tuple], docstatus: int = 1
    ) -> None:
        """items: (item_code, qty, rate, delivered_qty)."""
        now = self.clock.now()
        self.insert(
            "Sales Order",
            name=name,
            creation=now,
            modified=now,
            docstatus=docstatus,
            customer=customer,
            transaction_date=day,
            status="To Deliver and Bill",
            currency="CNY",
            grand_total=sum(q * r for _, q, r, _ in items),
        )
        for idx, (item, qty, rate, delivered) in enumerate(items, start=1):
            self.insert(
                "Sales Order Item",
                name=self.child_name(),
                modified=now,
                docstatus=docstatus,
                parent=name,
                parenttype="Sales Order",
                idx=idx,
                item_code=item,
                qty=qty,
                rate=rate,
                delivered_qty=delivered,
            )

    def delivery_note(self, name: str, customer: str, day: date, amount: float, order: str) -> None:
        self.insert(
            "Delivery Note",
            name=name,
            modified=self.clock.now(),
            docstatus=1,
            customer=customer,
            posting_date=day,
            territory="East China",
            grand_total=amount,
        )
        self.insert(
            "Delivery Note Item",
            name=self.child_name(),
            parent=name,
            parenttype="Delivery Note",
            idx=1,
            against_sales_order=order,
        )

    def sales_invoice(
        self,
        name: str,
        customer: str,
        day: date,
        items: list[tuple],
        docstatus: int = 1,
        return_against: str | None = None,
    ) -> None:
        """items: (item_code, qty, rate); a return has negative quantities."""
        now = self.clock.now()
        total = sum(q * r for _, q, r in items)
        self.insert(
            "Sales Invoice",
            name=name,
            creation=now,
            modified=now,
            docstatus=docstatus,
            customer=customer,
            posting_date=day,
            due_date=day + timedelta(days=30),
            currency="CNY",
            grand_total=total,
            outstanding_amount=total,
            is_return=int(return_against is not None),
            return_against=return_against,
            status="Unpaid",
        )
        for idx, (item, qty, rate) in enumerate(items, start=1):
            self.insert(
                "Sales Invoice Item",
                name=self.child_name(),
                modified=now,
                docstatus=docstatus,
                parent=name,
                parenttype="Sales Invoice",
                idx=idx,
                item_code=item,
                qty=qty,
                stock_qty=qty,
                rate=rate,
                amount=qty * rate,
                incoming_rate=rate * 0.6,
            )

    def payment_entry(
        self, name: str, customer: str, day: date, paid: float, allocations: dict, deductions: tuple = ()
    ) -> None:
        """allocations: invoice -> amount; deductions: (account, amount)."""
        self.insert(
            "Payment Entry",
            name=name,
            modified=self.clock.now(),
            docstatus=1,
            payment_type="Receive",
            party_type="Customer",
            party=customer,
            posting_date=day,
            paid_amount=paid,
            mode_of_payment="Wire Transfer",
        )
        for idx, (invoice, amount) in enumerate(allocations.items(), start=1):
            self.insert(
                "Payment Entry Reference",
                name=self.child_name(),
                parent=name,
                parenttype="Payment Entry",
                idx=idx,
                reference_doctype="Sales Invoice",
                reference_name=invoice,
                allocated_amount=amount,
            )
        for idx, (account, amount) in enumerate(deductions, start=1):
            self.insert(
                "Payment Entry Deduction",
                name=self.child_name(),
                parent=name,
                parenttype="Payment Entry",
                idx=idx,
                account=account,
                cost_center="Main",
                amount=amount,
            )

    def save(self, doctype: str, name: str, **changes) -> None:
        """Change a document the way a save does: the fields, and `modified`."""
        changes["modified"] = self.clock.now()
        assignments = ", ".join(f"{column} = %s" for column in changes)
        self.run(f"update `tab{doctype}` set {assignments} where name = %s", (*changes.values(), name))

    def cancel(self, doctype: str, name: str) -> None:
        self.save(
            doctype, name, docstatus=2, **({"status": "Cancelled"} if doctype != "Payment Entry" else {})
        )

    def delete(self, doctype: str, name: str) -> None:
        self.run(f"delete from `tab{doctype}` where name = %s", (name,))


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
        for statement in statements(DATA / "odoo.sql"):
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
            tag: self.insert("res_partner_category", name=f'{{"en_US": "{tag}"}}')
            for tag in ("Distributor", "Retail Chain")
        }
        salesperson = self.insert("res_partner", name="Zhang Min", email="zhang.min@example.com")
        self.user = self.insert("res_users", login="zhang.min@example.com", partner_id=salesperson)
        self.currency = self.insert("res_currency", name="CNY")
        self.bank = self.insert("account_journal", code="BNK1", name='{"en_US": "Bank"}', type="bank")
        self.outgoing = self.insert(
            "stock_picking_type", code="outgoing", name='{"en_US": "Delivery Orders"}'
        )

    def partner(self, name: str, tag: str | None) -> int:
        now = self.clock.now()
        partner = self.insert(
            "res_partner",
            name=name,
            is_company=True,
            customer_rank=1,
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
                product_id=product,
                product_uom_qty=qty,
                price_unit=price,
                qty_delivered=delivered,
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
            sale_id=order,
            picking_type_id=self.outgoing,
            state="done",
            date_done=datetime.combine(day, datetime.min.time()),
        )
        for sale_line, qty in moves:
            self.insert(
                "stock_move", picking_id=picking, sale_line_id=sale_line, product_uom_qty=qty, state="done"
            )
        return picking

    def invoice(
        self,
        partner: int,
        day: date,
        lines: list[tuple],
        move_type: str = "out_invoice",
        reversed_entry: int | None = None,
        origin: str | None = None,
    ) -> int:
        """lines: (product_id, qty, price). A posted customer invoice (or refund) with its
        product lines and its receivable line, which payments reconcile against."""
        total = sum(q * p for _, q, p in lines)
        move = self.insert(
            "account_move",
            name=f"{'INV' if move_type == 'out_invoice' else 'RINV'}/2026/{self.clock.now():%H%M%S}",
            move_type=move_type,
            state="posted",
            partner_id=partner,
            commercial_partner_id=partner,
            date=day,
            invoice_date=day,
            invoice_date_due=day + timedelta(days=30),
            invoice_origin=origin,
            currency_id=self.currency,
            amount_total=total,
            amount_residual=total,
            reversed_entry_id=reversed_entry,
        )
        for product, qty, price in lines:
            self.insert(
                "account_move_line",
                move_id=move,
                product_id=product,
                quantity=qty,
                price_unit=price,
                price_total=qty * price,
                display_type="product",
            )
        self.receivable_line = self.insert(
            "account_move_line", move_id=move, display_type="payment_term", debit=total, credit=0
        )
        return move

    def payment(self, partner: int, day: date, amount: float, reconcile: dict[int, float]) -> int:
        """A posted inbound customer payment reconciled with invoices (invoice move -> amount)."""
        move = self.insert(
            "account_move",
            name=f"PBNK1/2026/{self.clock.now():%H%M%S}",
            move_type="entry",
            state="posted",
            partner_id=partner,
            commercial_partner_id=partner,
            journal_id=self.bank,
            date=day,
        )
        payment_line = self.insert(
            "account_move_line", move_id=move, display_type="payment_term", debit=0, credit=amount
        )
        payment = self.insert(
            "account_payment", move_id=move, amount=amount, payment_type="inbound", partner_type="customer"
        )
        for invoice, allocated in reconcile.items():
            invoice_line = self.admin.execute(
                "select id from account_move_line where move_id = %s and display_type = 'payment_term'",
                (invoice,),
            ).fetchone()[0]
            self.insert(
                "account_partial_reconcile",
                debit_move_id=invoice_line,
                credit_move_id=payment_line,
                amount=allocated,
                max_date=day,
            )
        return payment
