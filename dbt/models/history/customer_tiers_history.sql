-- Every run appends its day's tiers; `publish` prunes runs of that day that were not published.
select
    as_of_date,
    customer_id,
    tier,
    previous_tier,
    tier_change,
    tier_reason,
    net_revenue_12m,
    cumulative_share_before,
    value_score,
    is_false_key_account,
    defection_risk,
    defection_reasons,
    '{{ invocation_id }}' as dbt_invocation_id
from {{ ref('customer_tiers') }}
