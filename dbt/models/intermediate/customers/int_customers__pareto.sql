-- The 80/20 rule per account: rank by trailing-12-month net revenue, each account's share,
-- the cumulative share *before* it, and the first tier whose cut-off that share stays
-- below. Ties share a rank and a tier; accounts without positive revenue are the last tier.

with

accounts as (

    select * from {{ ref('int_customers__accounts') }}

),

sales as (

    select * from {{ ref('int_customers__sales_metrics') }}

),

tiers as (

    select * from {{ ref('tier_policy') }}

),

account_revenue as (

    select
        accounts.account_id,
        sum(sales.net_revenue_12m) as net_revenue_12m
    from accounts
    inner join sales on accounts.customer_id = sales.customer_id
    group by accounts.account_id

),

ranked as (

    select
        account_id,
        net_revenue_12m,
        rank() over (order by net_revenue_12m desc) as revenue_rank,
        net_revenue_12m / nullif(sum(net_revenue_12m) over (), 0) as revenue_share,
        -- everything ranked above: the running total through the tied group, less that group
        -- (a frame with EXCLUDE GROUP is re-summed for every row, quadratic in accounts)
        (
            sum(net_revenue_12m) over (order by net_revenue_12m desc range between unbounded preceding and current row)
            - sum(net_revenue_12m) over (partition by net_revenue_12m)
        ) / nullif(sum(net_revenue_12m) over (), 0) as cumulative_share_before
    from account_revenue

),

final as (

    select
        ranked.*,
        ranked.cumulative_share_before + ranked.revenue_share as cumulative_share,
        case
            when ranked.net_revenue_12m > 0 then (
                select tiers.tier from tiers
                where ranked.cumulative_share_before < tiers.max_cumulative_share_before
                order by tiers.max_cumulative_share_before
                limit 1
            )
        end as pareto_tier,
        (select tiers.tier from tiers order by tiers.max_cumulative_share_before desc limit 1) as last_tier
    from ranked

)

select
    account_id,
    net_revenue_12m,
    revenue_rank,
    cast(revenue_share as numeric(12, 8)) as revenue_share,
    cast(cumulative_share_before as numeric(12, 8)) as cumulative_share_before,
    cast(cumulative_share as numeric(12, 8)) as cumulative_share,
    coalesce(pareto_tier, last_tier) as tier
from final
