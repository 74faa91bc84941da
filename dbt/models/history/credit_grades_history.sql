-- Every run appends its day's grades; `publish` prunes runs of that day that were not published.
select
    as_of_date,
    customer_id,
    credit_grade,
    previous_grade,
    credit_score,
    character_score,
    capacity_score,
    capital_score,
    collateral_score,
    conditions_score,
    credit_limit,
    exposure,
    is_stop_shipment,
    stop_since_date,
    last_review_date,
    '{{ invocation_id }}' as dbt_invocation_id
from {{ ref('credit_grades') }}
