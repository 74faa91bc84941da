"""The synthetic ERP: deterministic, realistic landing files for every raw table.

`generate(out_dir, scale, seed, end_date)` writes landing/<source>/<table>/<table>.csv and
ground_truth.json. Scale 1 is about 500 customers and 50,000 invoices over three years;
rows are written as they are made, so memory is O(customers), not O(invoices).

Revenue is Pareto-distributed; customers pay from promptly to chronically late, partially,
with credit notes and deductions. Cases for every rule of docs/design.md §2 are injected, and the
ground truth lists each with the finding the marts must reach.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from kam.contract import load_contract

CUSTOMERS_PER_SCALE = 500
INVOICES_PER_SCALE = 50_000
HISTORY_DAYS = 3 * 365
PARETO_ALPHA = 1.16  # the shape for which the top 20 % hold about 80 %
REGIONS = ("East", "North", "South", "West", "Central", "Northeast")
CITY_CN = ("上海", "北京", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "苏州", "天津", "重庆")
WORD_CN = ("华联", "永辉", "恒信", "金穗", "瑞丰", "百佳", "鑫达", "中粮", "万家", "新世纪", "宏图", "佳美")
SUFFIX_CN = ("商贸有限公司", "食品贸易有限公司", "连锁超市有限公司", "供应链管理有限公司")
WORD_EN = ("Northwind", "Blue River", "Golden Grain", "Summit", "Harbor", "Evergreen", "Pioneer", "Lotus")
SUFFIX_EN = ("Trading Ltd", "Distribution Co.", "Foods Inc.", "Retail Group")
PAYMENT_PROFILES = {  # share of customers, (min, max) days late, share of invoices never paid
    "prompt": (0.35, (-7, 0), 0.0),
    "normal": (0.35, (0, 12), 0.0),
    "late": (0.20, (15, 75), 0.01),
    "chronic": (0.10, (60, 200), 0.12),
}
RETAILERS = {  # retailer: (stores, charges a brand fee)
    "Lianhua 联华": (24, True),
    "Shiji 世纪联华": (18, False),
    "Carrefour 家乐福": (30, True),
    "Hualian 华联": (16, False),
    "RT-Mart 大润发": (22, True),
    "Yonghui 永辉": (20, False),
}
DEDUCTION_SPELLINGS = {
    "fee": ("FEE", "fee-deduction", "费用扣款", "Fee Ded."),
    "promotion": ("PROMO", "promotion", "促销费"),
    "shortage": ("SHORT", "短货"),
}
CENT = Decimal("0.01")


def money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class TableWriter:
    """One CSV per raw table, in the contract's column order, written as rows come."""

    def __init__(self, out_dir: Path):
        self.contract = load_contract()
        self.out_dir = out_dir
        self.handles: dict[str, object] = {}
        self.writers: dict[str, csv.DictWriter] = {}
        self.counts: dict[str, int] = {}

    def write(self, table: str, **row: object) -> None:
        if table not in self.writers:
            spec = self.contract[table]
            path = self.out_dir / spec.source / table / f"{table}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self.handles[table] = handle
            self.writers[table] = csv.DictWriter(handle, fieldnames=spec.column_names, lineterminator="\n")
            self.writers[table].writeheader()
            self.counts[table] = 0
        self.writers[table].writerow({k: "" if v is None else v for k, v in row.items()})
        self.counts[table] += 1

    def close(self) -> dict[str, int]:
        for table in self.contract:  # every table gets a file, even an empty one
            if table not in self.writers:
                self.write_header_only(table)
        for handle in self.handles.values():
            handle.close()
        return dict(self.counts)

    def write_header_only(self, table: str) -> None:
        spec = self.contract[table]
        path = self.out_dir / spec.source / table / f"{table}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(",".join(spec.column_names) + "\n", encoding="utf-8")
        self.counts[table] = 0


@dataclass
class Customer:
    customer_id: str
    name: str
    customer_type: str
    region: str
    manager: int
    terms: int
    weight: float
    profile: str
    discount: float
    invoice_count: int = 0
    sell_in_by_month: dict[date, float] = field(default_factory=dict)
    revenue_12m: Decimal = Decimal(0)
    cases: list[str] = field(default_factory=list)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months(first: date, last: date) -> list[date]:
    months, current = [], _month_start(first)
    while current <= last:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


class Generator:
    def __init__(
        self, out_dir: Path, scale: float, seed: int, end_date: date, progress: Callable[[str], None]
    ):
        self.out = TableWriter(out_dir)
        self.out_dir = out_dir
        self.scale = scale
        self.seed = seed
        self.end = end_date
        self.start = end_date - timedelta(days=HISTORY_DAYS)
        self.progress = progress
        self.truth: dict[str, list] = {
            "false_key_accounts": [],
            "defection": [],
            "over_limit": [],
            "weak_financials": [],
            "missing_financials": [],
            "fee_bills": [],
            "unauthorised_deductions": [],
        }

    def rng(self, part: str) -> random.Random:
        """A generator per part, so adding a part does not shift the others' numbers."""
        return random.Random(f"{self.seed}:{part}")

    # -- master data ----------------------------------------------------------------------
    def customers(self) -> list[Customer]:
        rng = self.rng("customers")
        count = max(20, round(CUSTOMERS_PER_SCALE * self.scale))
        managers = max(4, count // 25)
        profiles = list(PAYMENT_PROFILES)
        shares = [PAYMENT_PROFILES[p][0] for p in profiles]
        customers = []
        for i in range(1, count + 1):
            kind = rng.choices(("distributor", "retail_chain", "direct"), (0.45, 0.25, 0.30))[0]
            if rng.random() < 0.55:
                name = rng.choice(CITY_CN) + rng.choice(WORD_CN) + rng.choice(SUFFIX_CN)
            else:
                name = f"{rng.choice(WORD_EN)} {rng.choice(REGIONS)} {rng.choice(SUFFIX_EN)}"
            weight = min((1 - rng.random()) ** (-1 / PARETO_ALPHA), 150.0)
            customers.append(
                Customer(
                    customer_id=f"C{i:05d}",
                    name=f"{name} #{i}",
                    customer_type=kind,
                    region=rng.choice(REGIONS),
                    manager=rng.randrange(managers) + 1,
                    terms=rng.choice((30, 30, 30, 30, 45, 60)),
                    weight=weight,
                    profile=rng.choices(profiles, shares)[0],
                    discount=rng.uniform(0.85, 1.0),
                )
            )
        # Revenue follows the weight: invoice count grows with weight**0.6, size with weight**0.6 (a little more concentrated than the weight, as real ledgers are).
        total = sum(c.weight**0.6 for c in customers)
        invoices = INVOICES_PER_SCALE * self.scale
        for c in customers:
            c.invoice_count = max(3, round(invoices * c.weight**0.6 / total))
        contacts = self.rng("contacts")  # its own stream: the customers' other numbers stay as they were
        reviews = self.rng("reviews")
        # credit control keeps to its cadence (key accounts, the largest, every six months, others yearly):
        # one customer in ten is behind
        key_weight = sorted((c.weight for c in customers), reverse=True)[max(len(customers) // 5 - 1, 0)]
        for c in customers:
            cadence_days = 182 if c.weight >= key_weight else 365
            behind = reviews.random() < 0.1
            reviewed_days_ago = (
                reviews.randrange(cadence_days + 10, cadence_days + 200)
                if behind
                else reviews.randrange(0, cadence_days - 30)
            )
            chinese = not c.name[0].isascii()
            surname = contacts.choice(
                ("王", "李", "张", "刘", "陈") if chinese else ("Smith", "Chen", "Garcia", "Müller")
            )
            parent = None
            if c.customer_type == "retail_chain" and rng.random() < 0.15:
                parent = rng.choice(customers).customer_id
                parent = None if parent == c.customer_id else parent
            self.out.write(
                "customers",
                customer_id=c.customer_id,
                customer_name=c.name,
                customer_type=c.customer_type,
                parent_customer_id=parent,
                region=c.region,
                territory=c.region,
                channel=rng.choice(("KA", "traditional", "online")),
                account_manager=f"Manager {c.manager:02d}",
                account_manager_email=f"am{c.manager:02d}@example.com",
                payment_terms_days=c.terms,
                influence_rating=rng.randint(1, 5),
                created_date=self.start - timedelta(days=rng.randrange(30, 2000)),
                is_active="true",
                contact_name=f"{surname}{'会计' if chinese else ' (accounts payable)'}",
                contact_phone=f"+86 {contacts.randrange(130, 190)} {contacts.randrange(1000, 9999)} {contacts.randrange(1000, 9999)}",
                contact_email=f"ap.{c.customer_id.lower()}@example.com",
                language="zh-CN" if chinese else "en-US",
                last_credit_review_date=self.end - timedelta(days=reviewed_days_ago),
            )
        return customers

    def products(self) -> list[tuple[str, Decimal, Decimal]]:
        rng = self.rng("products")
        products = []
        for i in range(1, 61):
            price = money(rng.uniform(8, 400))
            cost = money(float(price) * rng.uniform(0.55, 0.8))
            products.append((f"P{i:03d}", price, cost))
            self.out.write(
                "products",
                product_id=f"P{i:03d}",
                product_name=f"Product {i:03d}",
                category=rng.choice(("snacks", "beverages", "dairy", "frozen", "household")),
                unit_cost=cost,
                list_price=price,
            )
        return products

    # -- injected cases ---------------------------------------------------------------------
    def choose_cases(self, customers: list[Customer]) -> None:
        rng = self.rng("cases")
        ranked = sorted(customers, key=lambda c: c.weight, reverse=True)
        top = ranked[: max(10, len(ranked) // 8)]
        distributors = [c for c in top if c.customer_type == "distributor"]
        per_kind = max(2, round(3 * self.scale))
        for c in rng.sample(distributors, min(len(distributors), 2 * per_kind)):
            c.cases.append(rng.choice(("inventory_piling", "cross_region")))
        others = [c for c in top if not c.cases]
        for c in rng.sample(others, min(len(others), per_kind)):
            c.cases.append("defection")
        others = [c for c in ranked[: len(ranked) // 3] if not c.cases and c.profile in ("prompt", "normal")]
        for c in rng.sample(others, min(len(others), per_kind)):
            c.cases.append("over_limit")
        others = [c for c in ranked if not c.cases]
        for c in rng.sample(others, min(len(others), per_kind)):
            c.cases.append("weak_financials")
        for c in top[:3]:
            if "defection" not in c.cases:
                c.cases.append("not_visited")

    # -- transactions ------------------------------------------------------------------------
    def invoices(self, customers: list[Customer], products) -> None:
        rng = self.rng("invoices")
        year_ago = self.end - timedelta(days=365)
        invoice_no = payment_no = credit_no = deduction_no = 0
        written = 0
        for c in customers:
            late_min, late_max = PAYMENT_PROFILES[c.profile][1]
            never_paid = PAYMENT_PROFILES[c.profile][2]
            mean_amount = 500 * c.weight**0.6
            stops_ordering = None
            if "defection" in c.cases:
                stops_ordering = self.end - timedelta(days=150)
                self.truth["defection"].append(
                    {"customer_id": c.customer_id, "reasons": ["revenue_drop", "order_gap"]}
                )
            days = sorted(rng.randrange(HISTORY_DAYS) for _ in range(c.invoice_count))
            for offset in days:
                invoice_date = self.start + timedelta(days=offset)
                if stops_ordering and invoice_date > stops_ordering:
                    continue
                invoice_no += 1
                invoice_id = f"INV{invoice_no:08d}"
                order_id = f"SO{invoice_no:08d}"
                order_date = invoice_date - timedelta(days=rng.randrange(0, 4))
                self.out.write(
                    "sales_orders",
                    order_id=order_id,
                    customer_id=c.customer_id,
                    order_date=order_date,
                    status="invoiced",
                    currency="CNY",
                )
                amount = Decimal(0)
                for line_no in range(1, rng.randint(1, 3) + 1):
                    product_id, price, cost = rng.choice(products)
                    unit_price = money(float(price) * c.discount)
                    quantity = max(1, round(rng.lognormvariate(0, 0.5) * mean_amount / float(unit_price)))
                    line_amount = money(unit_price * quantity)
                    amount += line_amount
                    self.out.write(
                        "sales_order_lines",
                        order_id=order_id,
                        line_no=line_no,
                        product_id=product_id,
                        quantity=quantity,
                        unit_price=unit_price,
                        shipped_quantity=quantity,
                    )
                    self.out.write(
                        "invoice_lines",
                        invoice_id=invoice_id,
                        line_no=line_no,
                        product_id=product_id,
                        quantity=quantity,
                        unit_price=unit_price,
                        amount=line_amount,
                        cost_amount=money(cost * quantity),
                    )
                    month = _month_start(invoice_date)
                    c.sell_in_by_month[month] = c.sell_in_by_month.get(month, 0.0) + quantity
                self.out.write(
                    "shipments",
                    shipment_id=f"SH{invoice_no:08d}",
                    order_id=order_id,
                    customer_id=c.customer_id,
                    ship_date=invoice_date,
                    ship_to_region=c.region,
                    amount=amount,
                )
                cancelled = rng.random() < 0.01
                due = invoice_date + timedelta(days=c.terms)
                self.out.write(
                    "invoices",
                    invoice_id=invoice_id,
                    invoice_number=f"FP-{invoice_no:08d}",
                    customer_id=c.customer_id,
                    order_id=order_id,
                    invoice_date=invoice_date,
                    due_date=None if rng.random() < 0.04 else due,
                    currency="CNY",
                    amount=amount,
                    status="cancelled" if cancelled else "posted",
                )
                written += 1
                if written % 100_000 == 0:
                    self.progress(f"  {written} invoices generated")
                if cancelled:
                    continue
                if invoice_date > year_ago:
                    c.revenue_12m += amount
                to_pay = amount
                if rng.random() < 0.04:
                    credit_no += 1
                    credit = money(amount * Decimal(str(rng.uniform(0.05, 0.3))))
                    reason = rng.choices(
                        ("return", "quality", "price_adjustment", "rebate", "other"), (4, 3, 2, 1, 1)
                    )[0]
                    credit_date = invoice_date + timedelta(days=rng.randrange(3, 40))
                    if credit_date <= self.end:
                        self.out.write(
                            "credit_notes",
                            credit_note_id=f"CN{credit_no:07d}",
                            invoice_id=invoice_id,
                            customer_id=c.customer_id,
                            credit_date=credit_date,
                            amount=credit,
                            reason=reason,
                        )
                        to_pay -= credit
                if rng.random() < never_paid:
                    continue
                pay_date = due + timedelta(days=rng.randint(late_min, late_max))
                if pay_date > self.end:
                    continue
                deduction = Decimal(0)
                if c.customer_type == "distributor" and rng.random() < 0.02:
                    deduction = money(to_pay * Decimal("0.05"))
                instalments = [to_pay - deduction]
                if (
                    rng.random() < 0.08
                ):  # partial payments: half now, the rest later (maybe after the as-of date)
                    first = money(instalments[0] / 2)
                    instalments = [first, instalments[0] - first]
                for n, part in enumerate(instalments):
                    date_paid = pay_date + timedelta(days=45 * n)
                    if date_paid > self.end:
                        break
                    payment_no += 1
                    payment_id = f"PAY{payment_no:08d}"
                    extra = money(rng.uniform(1, 50)) if rng.random() < 0.01 else Decimal(0)  # overpayment
                    self.out.write(
                        "payments",
                        payment_id=payment_id,
                        customer_id=c.customer_id,
                        payment_date=date_paid,
                        amount=part + extra,
                        method=rng.choice(("bank_transfer", "bank_transfer", "acceptance_bill")),
                    )
                    self.out.write(
                        "payment_allocations", payment_id=payment_id, invoice_id=invoice_id, amount=part
                    )
                    if deduction and n == 0:
                        deduction_no += 1
                        spelling = rng.choice(DEDUCTION_SPELLINGS["shortage"])
                        self.out.write(
                            "payment_deductions",
                            deduction_id=f"DED{deduction_no:07d}",
                            payment_id=payment_id,
                            invoice_id=invoice_id,
                            customer_id=c.customer_id,
                            amount=deduction,
                            reason_code=spelling,
                            claim_reference=f"CLAIM-{invoice_id}",
                        )
        self.numbers = {"invoice": invoice_no, "payment": payment_no, "deduction": deduction_no}

    def open_orders(self, customers: list[Customer], products) -> None:
        """Orders not invoiced yet: the exposure beyond open AR. Over-limit cases get one
        larger than any limit the policy could give them (AAA is 20 % of annual sales)."""
        rng = self.rng("open_orders")
        number = 0
        for c in customers:
            big = "over_limit" in c.cases
            if not big and rng.random() > 0.15:
                continue
            number += 1
            order_id = f"SO-OPEN{number:06d}"
            status = "shipped" if rng.random() < 0.4 else "open"
            target = c.revenue_12m * Decimal("0.6") if big else money(rng.uniform(500, 5000))
            product_id, price, _ = rng.choice(products)
            quantity = max(1, int(target / price) + 1)
            order_date = self.end - timedelta(days=rng.randrange(1, 10))
            self.out.write(
                "sales_orders",
                order_id=order_id,
                customer_id=c.customer_id,
                order_date=order_date,
                status=status,
                currency="CNY",
            )
            self.out.write(
                "sales_order_lines",
                order_id=order_id,
                line_no=1,
                product_id=product_id,
                quantity=quantity,
                unit_price=price,
                shipped_quantity=quantity if status == "shipped" else 0,
            )
            if status == "shipped":
                self.out.write(
                    "shipments",
                    shipment_id=f"SH-OPEN{number:06d}",
                    order_id=order_id,
                    customer_id=c.customer_id,
                    ship_date=order_date,
                    ship_to_region=c.region,
                    amount=money(price * quantity),
                )
            if big:
                self.truth["over_limit"].append(
                    {
                        "customer_id": c.customer_id,
                        "open_order_amount": str(money(price * quantity)),
                        "expected": "is_stop_shipment",
                        "why": "open orders above 20 % of annual sales",
                    }
                )

    # -- credit inputs -------------------------------------------------------------------------
    def credit_inputs(self, customers: list[Customer]) -> None:
        rng = self.rng("credit")
        period_ends = [
            date(y, 12, 31) for y in range(self.start.year, self.end.year) if date(y, 12, 31) <= self.end
        ]
        event_no = collateral_no = 0
        for c in customers:
            weak = "weak_financials" in c.cases
            if not weak and rng.random() < 0.2:
                self.truth["missing_financials"].append(c.customer_id)
            else:
                size = float(c.revenue_12m or 100000) * rng.uniform(0.8, 2.5)
                for period_end in period_ends:
                    assets = size * rng.uniform(0.9, 1.1)
                    debt_ratio = rng.uniform(0.92, 1.05) if weak else rng.uniform(0.25, 0.7)
                    current_ratio = rng.uniform(0.4, 0.7) if weak else rng.uniform(1.1, 2.5)
                    current_liabilities = assets * debt_ratio * 0.6
                    current_assets = current_liabilities * current_ratio
                    self.out.write(
                        "customer_financials",
                        customer_id=c.customer_id,
                        period_end=period_end,
                        total_assets=money(assets),
                        total_liabilities=money(assets * debt_ratio),
                        current_assets=money(current_assets),
                        current_liabilities=money(current_liabilities),
                        inventory=money(current_assets * rng.uniform(0.2, 0.5)),
                        cash=money(current_assets * rng.uniform(0.05, 0.3)),
                        intangible_assets=money(assets * rng.uniform(0, 0.1)),
                    )
                if weak:
                    self.truth["weak_financials"].append(
                        {"customer_id": c.customer_id, "expected": "capital_score below 40"}
                    )
            if rng.random() < 0.1:
                collateral_no += 1
                self.out.write(
                    "collateral",
                    collateral_id=f"COL{collateral_no:05d}",
                    customer_id=c.customer_id,
                    collateral_type=rng.choice(("property", "bank_guarantee", "deposit")),
                    value=money(float(c.revenue_12m) * rng.uniform(0.05, 0.3)),
                    valid_from=self.start,
                    valid_to=self.end + timedelta(days=rng.randrange(-200, 700)),
                )
            events = {"prompt": 0, "normal": 0.2, "late": 1.5, "chronic": 4}[c.profile]
            for _ in range(int(events) + (rng.random() < events % 1)):
                event_no += 1
                kind = rng.choice(("broken_promise", "broken_promise", "dispute"))
                if c.profile == "chronic" and rng.random() < 0.3:
                    kind = rng.choice(("write_off", "legal_action"))
                self.out.write(
                    "credit_events",
                    event_id=f"EV{event_no:06d}",
                    customer_id=c.customer_id,
                    event_date=self.end - timedelta(days=rng.randrange(10, 700)),
                    event_type=kind,
                    amount=money(rng.uniform(1000, 50000)),
                    note=f"{kind.replace('_', ' ')} recorded by credit control",
                )
        for period_end in _months(self.start, self.end):
            quarter_end = (period_end + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            if quarter_end.month % 3 or quarter_end > self.end:
                continue
            scale = 1e8 * self.scale
            self.out.write(
                "company_financials",
                period_end=quarter_end,
                total_assets=money(scale * 2.4),
                total_liabilities=money(scale),
                cash=money(scale * 0.35),
                accounts_receivable=money(scale * 0.8),
            )

    def visits(self, customers: list[Customer]) -> None:
        rng = self.rng("visits")
        number = 0
        for c in sorted(customers, key=lambda c: c.weight, reverse=True)[: max(10, len(customers) // 4)]:
            last = self.end - timedelta(days=200 if "not_visited" in c.cases else rng.randrange(1, 40))
            day = last
            while day > self.end - timedelta(days=730):
                number += 1
                self.out.write(
                    "visits",
                    visit_id=f"V{number:07d}",
                    customer_id=c.customer_id,
                    visit_date=day,
                    visit_level=rng.choice(("executive", "technical", "business")),
                    visited_by=f"Manager {c.manager:02d}",
                )
                day -= timedelta(days=rng.randrange(20, 60))
            if "not_visited" in c.cases:
                self.truth["defection"].append({"customer_id": c.customer_id, "reasons": ["not_visited"]})

    def sell_out(self, customers: list[Customer]) -> None:
        """Distributors report what they sold on. A false key account's sell-in outruns its
        sell-out (stock piles up) or its sell-out shows up outside its territory."""
        rng = self.rng("sell_out")
        recent = self.end - timedelta(days=190)
        for c in customers:
            if c.customer_type != "distributor":
                continue
            piling = "inventory_piling" in c.cases
            diverting = "cross_region" in c.cases
            inventory = 0.0
            recent_sold: list[float] = []
            foreign = [r for r in REGIONS if r != c.region]
            for month in _months(self.start, self.end)[:-1]:  # every complete month, bought in or not
                sell_in = c.sell_in_by_month.get(month, 0.0)
                through = (
                    rng.uniform(0.5, 0.6)
                    if piling and month >= _month_start(recent)
                    else rng.uniform(0.95, 1.02)
                )
                sold = sell_in * through
                recent_sold = (recent_sold + [sold])[-3:]
                if piling:
                    inventory = max(sell_in * 1.2, inventory + sell_in - sold)
                else:  # healthy stock: about a month of the recent average sell-out
                    inventory = sum(recent_sold) / 3 * rng.uniform(0.9, 1.4)
                shares = [(c.region, 1.0)]
                if diverting and month >= _month_start(recent):
                    shares = [(c.region, 0.6), (rng.choice(foreign), 0.4)]
                for region, share in shares:
                    self.out.write(
                        "sell_out",
                        customer_id=c.customer_id,
                        period_month=month,
                        product_id="ALL",
                        region=region,
                        quantity_sold=round(sold * share, 3),
                        closing_inventory_qty=round(inventory * share, 3),
                    )
            for case in ("inventory_piling", "cross_region"):
                if case in c.cases:
                    self.truth["false_key_accounts"].append({"customer_id": c.customer_id, "reason": case})

    # -- fees --------------------------------------------------------------------------------
    def fees(self, customers: list[Customer]) -> None:
        """Retailer fee schedules and the fee bills distributors send us. Half the billing
        distributors are honest; the other half carry every finding of docs/design.md §2.4."""
        rng = self.rng("fees")
        schedule_start = self.start
        schedules = {}
        for retailer, (stores, brand_fee) in RETAILERS.items():
            for store in range(1, stores + 1):
                self.out.write(
                    "retailer_stores",
                    retailer=retailer,
                    store_id=f"{retailer[:2].upper()}-{store:03d}",
                    region=rng.choice(REGIONS),
                )
            fees = {
                "opening": ("one_time", money(rng.choice((5000, 8000, 10000, 20000))), None),
                "barcode": (
                    "per_sku_per_store",
                    money(rng.choice((50, 80, 100))),
                    money(rng.choice((3000, 4000))),
                ),
                "display": ("per_store", money(rng.choice((300, 500, 800))), None),
                "inspection": ("per_period", money(rng.choice((2000, 3000))), None),
            }
            if brand_fee:
                fees["brand"] = ("per_period", money(rng.choice((5000, 10000))), None)
            for fee_type, (basis, unit, bundle) in fees.items():
                schedules[(retailer, fee_type)] = (basis, unit, bundle)
                self.out.write(
                    "retailer_fee_schedules",
                    retailer=retailer,
                    fee_type=fee_type,
                    basis=basis,
                    unit_amount=unit,
                    bundle_amount=bundle,
                    valid_from=schedule_start,
                    valid_to=None,
                )
        billing = [c for c in customers if c.customer_type == "distributor"][: max(4, round(12 * self.scale))]
        retailers = list(RETAILERS)
        bill_no = deduction_no = 0
        period = _month_start(self.end - timedelta(days=40))
        bill_date = period + timedelta(days=20)

        def bill(
            distributor, retailer, fee_type, billed, finding, expected, store=None, skus=None, when=bill_date
        ):
            nonlocal bill_no
            bill_no += 1
            fee_bill_id = f"FB{bill_no:06d}"
            self.out.write(
                "fee_bills",
                fee_bill_id=fee_bill_id,
                distributor_id=distributor.customer_id,
                retailer=retailer,
                store_id=store,
                sku_count=skus,
                fee_type=fee_type,
                billed_amount=billed,
                bill_date=when,
                period_month=_month_start(when),
                reference=f"REF-{fee_bill_id}",
            )
            self.truth["fee_bills"].append(
                {
                    "fee_bill_id": fee_bill_id,
                    "distributor_id": distributor.customer_id,
                    "finding": finding,
                    "expected_amount": str(expected),
                    "overcharge_amount": str(max(Decimal(0), billed - expected)),
                }
            )
            return fee_bill_id

        for index, d in enumerate(billing):
            dishonest = index % 2 == 0
            shops = rng.sample(retailers, 3)
            for retailer in shops:
                opened = self.start + timedelta(days=rng.randrange(0, 300))
                self.out.write(
                    "retailer_accounts",
                    distributor_id=d.customer_id,
                    retailer=retailer,
                    account_opened_date=opened,
                )
            markup = Decimal("1.30") if dishonest else Decimal("1")
            finding = "markup" if dishonest else "ok"
            fee_ids = []
            for retailer in shops:
                store_prefix = retailer[:2].upper()
                basis, unit, _ = schedules[(retailer, "display")]
                for store in range(1, 4):
                    fee_ids.append(
                        bill(
                            d,
                            retailer,
                            "display",
                            money(unit * markup),
                            finding,
                            unit,
                            store=f"{store_prefix}-{store:03d}",
                        )
                    )
                basis, unit, _ = schedules[(retailer, "inspection")]
                fee_ids.append(bill(d, retailer, "inspection", money(unit * markup), finding, unit))
                basis, unit, bundle = schedules[(retailer, "barcode")]
                stores = RETAILERS[retailer][0] if dishonest else 2
                skus = 4
                per_store_total = unit * skus * stores
                for store in range(1, stores + 1):
                    store_id = f"{store_prefix}-{store:03d}"
                    if dishonest and per_store_total > bundle:
                        share = money(bundle * (unit * skus) / per_store_total)
                        fee_ids.append(
                            bill(
                                d,
                                retailer,
                                "barcode",
                                money(unit * skus),
                                "bundle_available",
                                share,
                                store=store_id,
                                skus=skus,
                            )
                        )
                    else:
                        fee_ids.append(
                            bill(
                                d,
                                retailer,
                                "barcode",
                                money(unit * skus),
                                "ok",
                                money(unit * skus),
                                store=store_id,
                                skus=skus,
                            )
                        )
            if dishonest:
                no_brand = [r for r in retailers if not RETAILERS[r][1]][index // 2 % 3]
                fee_ids.append(bill(d, no_brand, "brand", money(8000), "phantom", Decimal(0)))
                held = shops[0]
                fee_ids.append(
                    bill(d, held, "opening", schedules[(held, "opening")][1], "already_paid", Decimal(0))
                )
                retailer = shops[1]
                unit = schedules[(retailer, "display")][1]
                store_id = f"{retailer[:2].upper()}-001"
                fee_ids.append(
                    bill(
                        d, retailer, "display", money(unit * markup), "duplicate", Decimal(0), store=store_id
                    )
                )
            for fee_bill_id in fee_ids[: len(fee_ids) // 2]:
                deduction_no += 1
                self.out.write(
                    "payment_deductions",
                    deduction_id=f"FDED{deduction_no:06d}",
                    payment_id=None,
                    invoice_id=None,
                    customer_id=d.customer_id,
                    amount=next(
                        Decimal(t["expected_amount"]) + Decimal(t["overcharge_amount"])
                        for t in self.truth["fee_bills"]
                        if t["fee_bill_id"] == fee_bill_id
                    ),
                    reason_code=rng.choice(DEDUCTION_SPELLINGS["fee"]),
                    claim_reference=f"REF-{fee_bill_id}",
                )
            if dishonest:
                deduction_no += 1
                deduction_id = f"FDED{deduction_no:06d}"
                self.out.write(
                    "payment_deductions",
                    deduction_id=deduction_id,
                    payment_id=None,
                    invoice_id=None,
                    customer_id=d.customer_id,
                    amount=money(rng.uniform(2000, 9000)),
                    reason_code=rng.choice(DEDUCTION_SPELLINGS["promotion"]),
                    claim_reference=None,
                )
                self.truth["unauthorised_deductions"].append(
                    {"deduction_id": deduction_id, "distributor_id": d.customer_id}
                )

    def run(self) -> dict[str, int]:
        self.progress(f"generating scale {self.scale} (seed {self.seed}) up to {self.end}")
        customers = self.customers()
        products = self.products()
        self.choose_cases(customers)
        self.invoices(customers, products)
        self.open_orders(customers, products)
        self.credit_inputs(customers)
        self.visits(customers)
        self.sell_out(customers)
        self.fees(customers)
        counts = self.out.close()
        truth = {
            "scale": self.scale,
            "seed": self.seed,
            "end_date": self.end.isoformat(),
            "row_counts": counts,
            **self.truth,
        }
        (self.out_dir / "ground_truth.json").write_text(
            json.dumps(truth, indent=1, ensure_ascii=False), encoding="utf-8"
        )
        return counts


def generate(
    out_dir: Path,
    scale: float = 1,
    seed: int = 42,
    end_date: date | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write the landing files and ground_truth.json under out_dir; returns rows per table."""
    end = end_date or (date.today() - timedelta(days=1))
    return Generator(Path(out_dir), scale, seed, end, progress).run()
