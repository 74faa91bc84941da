-- Who the key accounts really are (docs/design.md §2.1): the 80/20 tier, the value score
-- (int_customers__value_scores), false key accounts with their evidence, defection risk with
-- its reasons (int_customers__defection_signals), and the tier change since the latest
-- published day before the as-of date.
-- depends_on: {{ ref('stg_audit__publications') }}
{%- set value_factors = value_score_factors() %}

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

accounts as (

    select * from {{ ref('int_customers__accounts') }}

),

pareto as (

    select * from {{ ref('int_customers__pareto') }}

),

sales as (

    select * from {{ ref('int_customers__sales_metrics') }}

),

value_scores as (

    select * from {{ ref('int_customers__value_scores') }}

),

defection as (

    select * from {{ ref('int_customers__defection_signals') }}

),

sell_through as (

    select * from {{ ref('int_distributors__sell_through') }}

),

previous as (

    -- each customer's latest published tier before the as-of date
    select
        customers.customer_id,
        latest.tier as previous_tier,
        latest.as_of_date as previous_as_of_date
    from customers
    inner join lateral (
        {{ published_row('customer_tiers_history', {'tier': 'text', 'as_of_date': 'date'}, 'customers.customer_id') }}
    ) as latest on true

),

evaluated as (

    -- published runs on the first day of a month: the candidates for formal evaluation points
    select
        customer_id,
        as_of_date as last_evaluated_date,
        tier as evaluated_tier
    from (
        {{ published_days('customer_tiers_history', {'customer_id': 'text', 'as_of_date': 'date', 'tier': 'text'},
            'as_of_date <= ' ~ as_of_date() ~ ' and extract(day from as_of_date) = 1') }}
    ) as month_starts

),

assessed as (

    select
        {{ as_of_date() }} as as_of_date,
        customers.customer_id,
        customers.customer_name,
        customers.customer_type,
        accounts.account_id,
        customers.account_manager,
        cast(sales.net_revenue_12m as numeric(18, 2)) as net_revenue_12m,
        cast(pareto.net_revenue_12m as numeric(18, 2)) as account_net_revenue_12m,
        pareto.revenue_rank,
        round(sales.net_revenue_12m / nullif(sum(sales.net_revenue_12m) over (), 0), 8) as revenue_share,
        round(pareto.cumulative_share_before, 6) as cumulative_share_before,
        round(pareto.cumulative_share, 6) as cumulative_share,
        pareto.tier,
        pareto.tier = 'A' as is_key_account,
        case when pareto.tier = 'A' then {{ policy('tier_review_months_key_account') }}
            else {{ policy('tier_review_months_other') }} end as review_months,
        value_scores.value_score,
        {%- for factor in value_factors %}
        value_scores.{{ factor }}_percentile,
        value_scores.{{ factor }}_weight,
        {%- endfor %}
        sell_through.inventory_months,
        sell_through.sell_in_sell_out_ratio,
        sell_through.out_of_territory_share,
        coalesce(sell_through.is_inventory_piling or sell_through.is_cross_region, false) as is_false_key_account,
        defection.defection_risk,
        defection.defection_reasons,
        defection.has_revenue_drop,
        defection.has_order_gap,
        defection.is_key_account_not_visited,
        defection.last_visit_date,
        defection.last_invoice_date,
        defection.last_order_date,
        previous.previous_tier,
        previous.previous_as_of_date,
        sell_through.is_inventory_piling,
        sell_through.is_cross_region
    from customers
    inner join accounts on customers.customer_id = accounts.customer_id
    inner join pareto on accounts.account_id = pareto.account_id
    inner join sales on customers.customer_id = sales.customer_id
    inner join value_scores on customers.customer_id = value_scores.customer_id
    inner join defection on customers.customer_id = defection.customer_id
    left join sell_through on customers.customer_id = sell_through.customer_id
    left join previous on customers.customer_id = previous.customer_id

),

latest_evaluations as (

    -- the latest formal evaluation point of each customer's cadence (key accounts every N
    -- months, everyone else every M, counted from the start of the year) that was published
    select distinct on (assessed.customer_id)
        assessed.customer_id,
        evaluated.last_evaluated_date,
        evaluated.evaluated_tier
    from assessed
    inner join evaluated on assessed.customer_id = evaluated.customer_id
    where (extract(month from evaluated.last_evaluated_date) - 1) % assessed.review_months = 0
    order by assessed.customer_id, evaluated.last_evaluated_date desc

),

final as (

    select
        assessed.as_of_date,
        assessed.customer_id,
        assessed.customer_name,
        assessed.customer_type,
        assessed.account_id,
        assessed.account_manager,
        assessed.net_revenue_12m,
        assessed.account_net_revenue_12m,
        assessed.revenue_rank,
        assessed.revenue_share,
        assessed.cumulative_share_before,
        assessed.cumulative_share,
        assessed.tier,
        assessed.is_key_account,
        'rank ' || assessed.revenue_rank || ': cumulative share before '
            || to_char(100 * assessed.cumulative_share_before, 'FM990.0') || '% -> tier ' || assessed.tier
            || case when assessed.account_id <> assessed.customer_id
                then ' (counted with group ' || assessed.account_id || ')' else '' end as tier_reason,
        assessed.previous_tier,
        case
            when assessed.previous_tier is null then 'new'
            when assessed.previous_tier = assessed.tier then 'same'
            when assessed.previous_tier > assessed.tier then 'up'
            else 'down'
        end as tier_change,
        assessed.previous_as_of_date,
        assessed.value_score,
        {%- for factor in value_factors %}
        assessed.{{ factor }}_percentile,
        assessed.{{ factor }}_weight,
        {%- endfor %}
        assessed.is_false_key_account,
        nullif(concat_ws('; ',
            case when assessed.is_inventory_piling then 'stock piling up: ' || coalesce(assessed.inventory_months::text, '?')
                || ' months of sell-out in stock, sell-in/sell-out ' || coalesce(assessed.sell_in_sell_out_ratio::text, '?') end,
            case when assessed.is_cross_region then 'cross-region sell-out: '
                || to_char(100 * assessed.out_of_territory_share, 'FM990.0') || '% outside its territory' end
        ), '') as false_key_account_evidence,
        assessed.inventory_months,
        assessed.sell_in_sell_out_ratio,
        assessed.out_of_territory_share,
        assessed.defection_risk,
        assessed.defection_reasons,
        assessed.has_revenue_drop,
        assessed.has_order_gap,
        assessed.is_key_account_not_visited,
        assessed.last_visit_date,
        assessed.last_invoice_date,
        assessed.last_order_date,
        latest_evaluations.last_evaluated_date,
        latest_evaluations.evaluated_tier,
        (
            cast(date_trunc('year', {{ as_of_date() }}) as date)
            + make_interval(months => cast(
                (floor(extract(month from {{ as_of_date() }} - interval '1 day') / assessed.review_months) + 1)
                * assessed.review_months as integer))
        )::date as next_evaluation_date
    from assessed
    left join latest_evaluations on assessed.customer_id = latest_evaluations.customer_id

)

select * from final
