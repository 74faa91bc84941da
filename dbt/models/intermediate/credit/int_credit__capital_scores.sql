-- The capital factor (资本实力): the customer's latest balance sheet by the as-of date,
-- each ratio scored by the credit_ratio_scoring seed. Without statements the policy's
-- default score applies, and the reasons say so.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

financials as (

    select * from {{ ref('stg_erp__customer_financials') }}
    where period_end_date <= {{ as_of_date() }}

),

sales as (

    select * from {{ ref('int_customers__sales_metrics') }}

),

latest as (

    select distinct on (customer_id) *
    from financials
    order by customer_id, period_end_date desc

),

ratios as (

    select
        latest.customer_id,
        latest.period_end_date as financials_date,
        latest.total_liabilities / nullif(latest.total_assets, 0) as debt_ratio,
        latest.current_assets / nullif(latest.current_liabilities, 0) as current_ratio,
        (latest.current_assets - coalesce(latest.inventory, 0)) / nullif(latest.current_liabilities, 0) as quick_ratio,
        latest.total_assets - latest.total_liabilities - coalesce(latest.intangible_assets, 0) as tangible_net_worth,
        (latest.total_assets - latest.total_liabilities - coalesce(latest.intangible_assets, 0))
        / nullif(sales.net_revenue_12m, 0) as tangible_net_worth_to_sales
    from latest
    left join sales on latest.customer_id = sales.customer_id

),

scored as (

    select
        ratios.*,
        {{ ratio_score('debt_ratio', 'ratios.debt_ratio') }} as debt_ratio_score,
        {{ ratio_score('current_ratio', 'ratios.current_ratio') }} as current_ratio_score,
        {{ ratio_score('quick_ratio', 'ratios.quick_ratio') }} as quick_ratio_score,
        {{ ratio_score('tangible_net_worth_to_sales', 'ratios.tangible_net_worth_to_sales') }} as tangible_net_worth_score
    from ratios

),

final as (

    select
        customers.customer_id,
        scored.financials_date,
        round(scored.debt_ratio, 3) as debt_ratio,
        round(scored.current_ratio, 3) as current_ratio,
        round(scored.quick_ratio, 3) as quick_ratio,
        cast(scored.tangible_net_worth as numeric(18, 2)) as tangible_net_worth,
        scored.customer_id is not null as has_financials,
        cast(coalesce(
            (coalesce(scored.debt_ratio_score, 0) + coalesce(scored.current_ratio_score, 0)
             + coalesce(scored.quick_ratio_score, 0) + coalesce(scored.tangible_net_worth_score, 0))
            / nullif((scored.debt_ratio_score is not null)::int + (scored.current_ratio_score is not null)::int
                     + (scored.quick_ratio_score is not null)::int + (scored.tangible_net_worth_score is not null)::int, 0),
            {{ policy('capital_default_score') }}
        ) as numeric(5, 1)) as capital_score
    from customers
    left join scored on customers.customer_id = scored.customer_id

)

select * from final
