"""Credit grades on generated data: limits follow grade and policy, stop shipment follows
exposure, and the injected over-limit and weak-financials customers land where expected."""

from __future__ import annotations

import json

from tests.conftest import rows, scalar


def ground_truth(built) -> dict:
    return json.loads((built["landing"] / "ground_truth.json").read_text())


def test_credit_limit_is_annual_sales_times_the_grade_share_and_the_gate(built_warehouse):
    url = built_warehouse["url"]
    mismatches = scalar(
        url,
        """
        select count(*)
        from marts.credit_grades g
        join staging.credit_grade_scale s using (credit_grade)
        cross join (select case when (select is_company_gate_open from intermediate.int_credit__company_gate)
                    then 1 else (select value from staging.policy_parameters where parameter = 'company_gate_limit_factor')
                    end as factor) gate
        where g.limit_pct <> s.limit_pct
           or g.credit_limit <> round(greatest(g.annual_sales, 0) * s.limit_pct * gate.factor, 2)""",
    )
    assert mismatches == 0
    assert (
        scalar(
            url,
            "select count(*) from marts.credit_grades where is_stop_shipment <> (exposure > credit_limit)",
        )
        == 0
    )


def test_at_least_five_grades_occur_and_every_grade_explains_itself(built_warehouse):
    url = built_warehouse["url"]
    assert scalar(url, "select count(distinct credit_grade) from marts.credit_grades") >= 5
    assert (
        scalar(url, "select count(*) from marts.credit_grades where grade_reasons not like 'score %% -> %%'")
        == 0
    )


def test_injected_over_limit_customers_are_on_the_stop_list(built_warehouse):
    url = built_warehouse["url"]
    expected = {case["customer_id"] for case in ground_truth(built_warehouse)["over_limit"]}
    assert expected
    stopped = {r[0] for r in rows(url, "select customer_id from marts.stop_shipments")}
    assert expected <= stopped
    assert stopped == {
        r[0] for r in rows(url, "select customer_id from marts.credit_grades where is_stop_shipment")
    }
    assert scalar(url, "select count(*) from marts.stop_shipments where amount_over_limit <= 0") == 0


def test_the_stop_list_tells_a_customer_over_its_line_from_one_without_a_line(built_warehouse):
    url = built_warehouse["url"]
    reasons = dict(
        rows(
            url,
            """
            select case when g.limit_pct > 0 then 'over_credit_limit' else 'cash_in_advance' end = s.stop_reason,
                   count(*)
            from marts.stop_shipments s join marts.credit_grades g using (customer_id) group by 1""",
        )
    )
    assert reasons.get(False, 0) == 0 and reasons[True] > 0
    assert set(r[0] for r in rows(url, "select distinct stop_reason from marts.stop_shipments")) == {
        "over_credit_limit",
        "cash_in_advance",
    }
    assert (
        scalar(
            url,
            "select count(*) from marts.stop_shipments where stop_reason = 'cash_in_advance'"
            " and stop_reason_detail not like 'cash in advance: grade %% has no credit line%%'",
        )
        == 0
    )


def test_weak_and_missing_financials_show_in_the_capital_score(built_warehouse):
    url = built_warehouse["url"]
    truth = ground_truth(built_warehouse)
    weak = [case["customer_id"] for case in truth["weak_financials"]]
    assert weak
    scores = dict(rows(url, "select customer_id, capital_score from marts.credit_grades"))
    assert all(scores[c] < 40 for c in weak)
    default = scalar(
        url, "select value from staging.policy_parameters where parameter = 'capital_default_score'"
    )
    missing = truth["missing_financials"]
    assert missing
    reasons = dict(rows(url, "select customer_id, grade_reasons from marts.credit_grades"))
    for customer in missing:
        assert scores[customer] == default
        assert "no financial statements" in reasons[customer]


def test_grade_history_supports_a_transition_matrix(built_warehouse):
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    matrix = rows(
        url,
        "select previous_grade, credit_grade, count(*) from marts.credit_grade_history "
        "where as_of_date = %s group by 1, 2",
        (as_of,),
    )
    assert sum(n for _, _, n in matrix) == scalar(url, "select count(*) from marts.credit_grades")


def test_reviews_due_are_those_the_recorded_reviews_make_due(built_warehouse):
    """Before any history, the cadence counts from the review the ERP recorded: the list is
    the customers really due (key accounts every six months, others yearly), not everyone."""
    url, as_of = built_warehouse["url"], built_warehouse["as_of"]
    due = {r[0] for r in rows(url, "select customer_id from marts.credit_grades where is_review_due")}
    expected = {
        r[0]
        for r in rows(
            url,
            """
            select c.customer_id from raw.customers c join marts.customer_tiers t using (customer_id)
            where c.last_credit_review_date + make_interval(months => case when t.tier = 'A' then 6 else 12 end)
                  <= %(as_of)s::date + (select value::int from staging.policy_parameters
                                        where parameter = 'review_due_notice_days')""",
            {"as_of": as_of},
        )
    }
    assert due == expected
    customers = scalar(url, "select count(*) from marts.credit_grades")
    assert 0 < len(due) <= 0.35 * customers
