-- One row per customer that answers "which key accounts need attention today, and why":
-- tier, value, credit, receivables, defection, false key account, fee overcharge, review
-- and stop shipment side by side, scored by the attention_rules seed and ranked.

with

tiers as (

    select * from {{ ref('customer_tiers') }}

),

grades as (

    select * from {{ ref('credit_grades') }}

),

aging as (

    -- a customer's books in every company, in company currencies (companies share one)
    select
        customer_id,
        sum(open_amount) as open_amount,
        sum(overdue_amount) as overdue_amount,
        max(oldest_days_past_due) as oldest_days_past_due
    from {{ ref('ar_aging') }}
    group by customer_id

),

fees as (

    select * from {{ ref('fee_reconciliation') }}

),

rules as (

    select * from {{ ref('attention_rules') }}

),

fee_overcharge as (

    select
        distributor_id as customer_id,
        sum(overcharge_amount) as fee_overcharge_12m
    from fees
    where bill_date > {{ trailing_window_excluded_date() }}
    group by distributor_id

),

signals as (

    select
        tiers.as_of_date,
        tiers.customer_id,
        tiers.customer_name,
        tiers.customer_type,
        tiers.account_manager,
        tiers.tier,
        tiers.is_key_account,
        tiers.value_score,
        tiers.net_revenue_12m,
        grades.credit_grade,
        grades.credit_limit,
        grades.exposure,
        grades.utilization,
        aging.open_amount,
        aging.overdue_amount,
        aging.oldest_days_past_due,
        tiers.defection_risk,
        tiers.defection_reasons,
        tiers.is_false_key_account,
        tiers.false_key_account_evidence,
        cast(coalesce(fee_overcharge.fee_overcharge_12m, 0) as numeric(18, 2)) as fee_overcharge_12m,
        grades.is_review_overdue,
        grades.next_review_date,
        grades.is_stop_shipment,
        array_remove(array[
            case when grades.is_stop_shipment then 'stop_shipment' end,
            case when aging.oldest_days_past_due > 90 then 'overdue_over_90_days'
                when aging.oldest_days_past_due > 30 then 'overdue_31_to_90_days' end,
            case tiers.defection_risk when 'high' then 'defection_high' when 'watch' then 'defection_watch' end,
            case when tiers.is_false_key_account then 'false_key_account' end,
            case when fee_overcharge.fee_overcharge_12m > 0 then 'fee_overcharge' end,
            case when grades.is_review_overdue then 'credit_review_overdue' end
        ], null) as fired_rules
    from tiers
    inner join grades on tiers.customer_id = grades.customer_id
    inner join aging on tiers.customer_id = aging.customer_id
    left join fee_overcharge on tiers.customer_id = fee_overcharge.customer_id

),

scored as (

    select
        signals.*,
        (
            select coalesce(sum(rules.points), 0) from rules
            where rules.rule = any(signals.fired_rules)
        ) + case when signals.is_key_account and cardinality(signals.fired_rules) > 0
            then (select points from rules where rule = 'key_account') else 0 end as attention_score,
        (
            select string_agg(rules.description, '; ' order by rules.points desc, rules.rule)
            from rules
            where rules.rule = any(signals.fired_rules)
        ) as attention_reasons
    from signals

),

final as (

    select
        as_of_date,
        customer_id,
        customer_name,
        customer_type,
        account_manager,
        tier,
        is_key_account,
        value_score,
        net_revenue_12m,
        credit_grade,
        credit_limit,
        exposure,
        utilization,
        open_amount,
        overdue_amount,
        oldest_days_past_due,
        defection_risk,
        defection_reasons,
        is_false_key_account,
        false_key_account_evidence,
        fee_overcharge_12m,
        is_review_overdue,
        next_review_date,
        is_stop_shipment,
        attention_score,
        rank() over (order by attention_score desc, net_revenue_12m desc) as attention_rank,
        attention_reasons
    from scored

)

select * from final
