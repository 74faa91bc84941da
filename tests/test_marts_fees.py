"""Fee reconciliation on generated data: every injected fee line gets its finding and
overcharge, clean lines stay clean, and recovery shows only for the injected distributors."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import rows, scalar


def ground_truth(built) -> dict:
    return json.loads((built["landing"] / "ground_truth.json").read_text())


def test_every_fee_line_gets_its_expected_finding_and_overcharge(built_warehouse):
    url = built_warehouse["url"]
    truth = ground_truth(built_warehouse)["fee_bills"]
    assert {case["finding"] for case in truth} == {
        "ok",
        "phantom",
        "already_paid",
        "markup",
        "bundle_available",
        "duplicate",
    }
    mart = {
        r[0]: (r[1], r[2])
        for r in rows(url, "select fee_bill_id, finding, overcharge_amount from marts.fee_reconciliation")
    }
    assert len(mart) == len(truth)
    for case in truth:
        finding, overcharge = mart[case["fee_bill_id"]]
        assert finding == case["finding"], case
        assert abs(overcharge - Decimal(case["overcharge_amount"])) <= Decimal("0.02"), case


def test_fee_identities_hold(built_warehouse):
    url = built_warehouse["url"]
    assert (
        scalar(
            url,
            "select count(*) from marts.fee_reconciliation "
            "where overcharge_amount <> greatest(billed_amount - expected_amount, 0)",
        )
        == 0
    )
    assert (
        scalar(
            url,
            "select count(*) from marts.fee_reconciliation where finding = 'ok' and overcharge_amount > 1",
        )
        == 0
    )
    assert scalar(url, "select sum(billed_amount) from marts.fee_recovery_by_distributor") == scalar(
        url, "select sum(billed_amount) from marts.fee_reconciliation"
    )


def test_recovery_shows_for_the_injected_distributors_and_none_for_the_clean_ones(built_warehouse):
    url = built_warehouse["url"]
    truth = ground_truth(built_warehouse)
    injected = {c["distributor_id"] for c in truth["fee_bills"] if c["finding"] != "ok"}
    clean = {c["distributor_id"] for c in truth["fee_bills"]} - injected
    assert injected and clean
    recoverable = dict(
        rows(
            url,
            "select distributor_id, sum(recoverable_amount) from marts.fee_recovery_by_distributor "
            "group by 1",
        )
    )
    assert all(recoverable[d] > 0 for d in injected)
    assert all(recoverable[d] == 0 for d in clean)
    unauthorised = {
        r[0]
        for r in rows(
            url,
            "select distinct distributor_id from marts.fee_recovery_by_distributor "
            "where unauthorised_deduction_count > 0",
        )
    }
    assert unauthorised == {c["distributor_id"] for c in truth["unauthorised_deductions"]}
