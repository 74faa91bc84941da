"""The raw contract is declared once (dbt sources) and matches DESIGN.md §4."""

from __future__ import annotations

import re

from kam.contract import load_contract
from kam.settings import PROJECT_DIR

DESIGN_TABLES = {
    "erp": {
        "customers": "customer_id customer_name customer_type parent_customer_id region territory channel "
        "account_manager account_manager_email payment_terms_days influence_rating created_date is_active",
        "products": "product_id product_name category unit_cost list_price",
        "sales_orders": "order_id customer_id order_date status currency",
        "sales_order_lines": "order_id line_no product_id quantity unit_price shipped_quantity",
        "shipments": "shipment_id order_id customer_id ship_date ship_to_region amount",
        "customer_financials": "customer_id period_end total_assets total_liabilities current_assets "
        "current_liabilities inventory cash intangible_assets",
        "collateral": "collateral_id customer_id collateral_type value valid_from valid_to",
        "credit_events": "event_id customer_id event_date event_type amount note",
        "sell_out": "customer_id period_month product_id region quantity_sold closing_inventory_qty",
        "visits": "visit_id customer_id visit_date visit_level visited_by",
        "company_financials": "period_end total_assets total_liabilities cash accounts_receivable",
        "companies": "company_id company_name currency",
        "exchange_rates": "currency rate_date rate",
    },
    "billing": {
        "invoices": "invoice_id invoice_number customer_id order_id invoice_date due_date currency amount status",
        "invoice_lines": "invoice_id line_no product_id quantity unit_price amount cost_amount",
        "invoice_installments": "invoice_id installment_no due_date amount",
        "credit_notes": "credit_note_id invoice_id customer_id credit_date amount reason",
        "payments": "payment_id customer_id payment_date amount method",
        "payment_allocations": "payment_id invoice_id amount",
        "payment_deductions": "deduction_id payment_id invoice_id customer_id amount reason_code claim_reference",
        "fee_bills": "fee_bill_id distributor_id retailer store_id sku_count fee_type billed_amount bill_date "
        "period_month reference",
        "retailer_fee_schedules": "retailer fee_type basis unit_amount bundle_amount valid_from valid_to",
        "retailer_accounts": "distributor_id retailer account_opened_date",
        "retailer_stores": "retailer store_id region",
    },
}
# DESIGN §4's additions (December 2026): optional, so files made before them keep loading.
MONEY_ROW = "company_id currency company_amount"
DESIGN_ADDITIONS = {
    "customers": "contact_name contact_phone contact_email language last_credit_review_date",
    "sales_orders": "cancelled_date company_id",
    "invoices": "company_id company_amount",  # the design's invoices had a currency already
    "credit_notes": MONEY_ROW,
    "payments": MONEY_ROW,
    "payment_allocations": MONEY_ROW,
    "payment_deductions": MONEY_ROW,
    "shipments": MONEY_ROW,
}
DESIGN_ENUMS = {
    ("customers", "customer_type"): {"distributor", "retail_chain", "direct"},
    ("sales_orders", "status"): {"open", "shipped", "invoiced", "cancelled"},
    ("credit_events", "event_type"): {
        "broken_promise",
        "dispute",
        "legal_action",
        "high_risk_investment",
        "write_off",
    },
    ("visits", "visit_level"): {"executive", "technical", "business"},
    ("invoices", "status"): {"posted", "cancelled"},
    ("credit_notes", "reason"): {"return", "quality", "price_adjustment", "rebate", "other"},
    ("retailer_fee_schedules", "basis"): {
        "one_time",
        "per_store",
        "per_sku_per_store",
        "bundle",
        "per_period",
    },
}


def test_contract_has_every_design_table_and_column_in_order():
    contract = load_contract()
    for source, tables in DESIGN_TABLES.items():
        for name, columns in tables.items():
            assert contract[name].source == source
            added = DESIGN_ADDITIONS.get(name, "").split()
            assert list(contract[name].column_names) == columns.split() + added
            assert [c.name for c in contract[name].columns if c.optional] == added
    assert len(contract) == sum(len(t) for t in DESIGN_TABLES.values())


def test_design_primary_keys_and_enums():
    contract = load_contract()
    for name in ("customers", "products", "sales_orders", "invoices", "payments", "fee_bills"):
        assert len(contract[name].primary_key) == 1
    assert contract["sales_order_lines"].primary_key == ("order_id", "line_no")
    for (table, column), values in DESIGN_ENUMS.items():
        assert set(contract[table].column(column).accepted_values) == values
    rating = contract["customers"].column("influence_rating")
    assert (rating.min_value, rating.max_value) == (1, 5)
    assert all(contract[t].column(c).not_null for t in contract for c in contract[t].primary_key)


def test_every_raw_table_has_one_staging_model_reading_only_its_source():
    staging = PROJECT_DIR / "dbt" / "models" / "staging"
    for table in load_contract().values():
        model = staging / table.source / f"stg_{table.source}__{table.name}.sql"
        text = model.read_text()
        assert re.findall(r"source\('(\w+)', '(\w+)'\)", text) == [(table.source, table.name)]
        assert "join" not in text.lower()
    models_outside_staging = [
        p for p in (PROJECT_DIR / "dbt" / "models").rglob("*.sql") if "staging" not in p.parts
    ]
    assert not [p for p in models_outside_staging if "source(" in p.read_text()]
    # the one documented exception: published history views read audit.publications directly
    macros_with_sources = [
        p.name for p in (PROJECT_DIR / "dbt" / "macros").glob("*.sql") if "source(" in p.read_text()
    ]
    assert macros_with_sources == ["published_history.sql"]
