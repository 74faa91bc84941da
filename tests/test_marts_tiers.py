"""Customer tiers on generated data: the 80/20 rule holds, and every injected false key
account and defection case is found with its reason."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import rows, scalar


def ground_truth(built) -> dict:
    return json.loads((built["landing"] / "ground_truth.json").read_text())


def test_revenue_shares_sum_to_one_and_tier_a_follows_the_cut_off(built_warehouse):
    url = built_warehouse["url"]
    assert abs(scalar(url, "select sum(revenue_share) from marts.customer_tiers") - 1) < Decimal("0.000001")
    cut_off = scalar(url, "select max_cumulative_share_before from staging.tier_policy where tier = 'A'")
    wrong = scalar(
        url,
        """
        select count(*) from marts.customer_tiers
        where account_id = customer_id
          and ((tier = 'A') <> (cumulative_share_before < %s and account_net_revenue_12m > 0))""",
        (cut_off,),
    )
    assert wrong == 0
    share_a, customers_a, customers = rows(
        url,
        """
        select sum(revenue_share) filter (where tier = 'A'), count(*) filter (where tier = 'A'), count(*)
        from marts.customer_tiers""",
    )[0]
    assert Decimal("0.75") < share_a < Decimal("0.9")
    assert customers_a < customers / 2


def test_every_injected_false_key_account_is_flagged_and_no_other(built_warehouse):
    url = built_warehouse["url"]
    truth = {
        case["customer_id"]: case["reason"] for case in ground_truth(built_warehouse)["false_key_accounts"]
    }
    assert truth
    flagged = dict(
        rows(
            url,
            "select customer_id, false_key_account_evidence from marts.customer_tiers "
            "where is_false_key_account",
        )
    )
    assert set(flagged) == set(truth)
    for customer_id, reason in truth.items():
        expected_words = "stock piling up" if reason == "inventory_piling" else "cross-region"
        assert expected_words in flagged[customer_id]


def test_every_injected_defection_case_is_flagged_with_its_reasons(built_warehouse):
    url = built_warehouse["url"]
    cases = ground_truth(built_warehouse)["defection"]
    assert cases
    found = {
        r[0]: (r[1], r[2] or "")
        for r in rows(url, "select customer_id, defection_risk, defection_reasons from marts.customer_tiers")
    }
    for case in cases:
        risk, reasons = found[case["customer_id"]]
        assert risk in ("watch", "high"), case
        for reason in case["reasons"]:
            assert reason in reasons, (case, reasons)


def test_tier_history_is_published_with_the_run(built_warehouse):
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    assert rows(url, "select distinct as_of_date from marts.customer_tier_history") == [(as_of,)]
    assert scalar(url, "select count(*) from marts.customer_tier_history") == scalar(
        url, "select count(*) from marts.customer_tiers"
    )
    assert rows(url, "select distinct tier_change from marts.customer_tiers") == [("new",)]


def test_the_order_gap_counts_from_the_last_standing_order(built_warehouse):
    """Recomputed from raw orders: the last order placed by the as-of date and not cancelled
    by then, and the gap flag against the usual interval between distinct order days."""
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    mismatched = scalar(
        url,
        """
        with standing as (
            select distinct customer_id, order_date from raw.sales_orders
            where order_date <= %(as_of)s and order_date > %(as_of)s::date - 730
              and case when cancelled_date is not null then cancelled_date > %(as_of)s else status <> 'cancelled' end),
        rhythm as (
            select customer_id, max(order_date) as last_order_date,
                   round((max(order_date) - min(order_date)) / nullif(count(*) - 1, 0.0), 1) as usual
            from standing group by customer_id)
        select count(*) from marts.customer_tiers t join rhythm using (customer_id)
        where t.last_order_date is distinct from rhythm.last_order_date
           or t.has_order_gap is distinct from coalesce(%(as_of)s - rhythm.last_order_date > (
                select value from staging.policy_parameters where parameter = 'defection_order_gap_multiple')
                * rhythm.usual, false)""",
        {"as_of": as_of},
    )
    assert mismatched == 0
    assert scalar(url, "select count(*) from marts.customer_tiers where last_order_date > %s", (as_of,)) == 0
