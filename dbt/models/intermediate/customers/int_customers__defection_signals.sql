-- Defection risk (docs/design.md §2.1, seed 003): recent revenue down against the same window a
-- year earlier, an order gap beyond the customer's usual interval (int_customers__order_rhythm), a key account not
-- visited; two signals or more is high risk. Every signal says why in words.

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

rhythm as (

    select * from {{ ref('int_customers__order_rhythm') }}

),

visits as (

    select * from {{ ref('stg_erp__visits') }}

),

last_visits as (

    select
        customer_id,
        max(visit_date) as last_visit_date
    from visits
    where visit_date <= {{ as_of_date() }}
    group by customer_id

),

signals as (

    select
        customers.customer_id,
        sales.revenue_recent_window,
        sales.revenue_same_window_last_year,
        sales.last_invoice_date,
        rhythm.last_order_date,
        rhythm.rhythm_basis,
        rhythm.usual_order_interval_days,
        last_visits.last_visit_date,
        sales.revenue_same_window_last_year > 0
            and sales.revenue_recent_window
            < (1 - {{ policy('defection_revenue_drop_share') }}) * sales.revenue_same_window_last_year
            as has_revenue_drop,
        coalesce({{ as_of_date() }} - rhythm.last_order_date
            > {{ policy('defection_order_gap_multiple') }} * rhythm.usual_order_interval_days, false) as has_order_gap,
        pareto.tier = 'A' and coalesce({{ as_of_date() }} - last_visits.last_visit_date
            > {{ policy('key_account_visit_days') }}, true) as is_key_account_not_visited
    from customers
    inner join accounts on customers.customer_id = accounts.customer_id
    inner join pareto on accounts.account_id = pareto.account_id
    inner join sales on customers.customer_id = sales.customer_id
    left join rhythm on customers.customer_id = rhythm.customer_id
    left join last_visits on customers.customer_id = last_visits.customer_id

),

final as (

    select
        *,
        case
            when has_revenue_drop::int + has_order_gap::int + is_key_account_not_visited::int >= 2 then 'high'
            when has_revenue_drop or has_order_gap or is_key_account_not_visited then 'watch'
            else 'none'
        end as defection_risk,
        nullif(concat_ws('; ',
            case when has_revenue_drop then 'revenue_drop: last ' || {{ policy('defection_window_days') }}
                || ' days ' || round(revenue_recent_window) || ' vs ' || round(revenue_same_window_last_year)
                || ' a year earlier' end,
            case when has_order_gap then 'order_gap: ' || ({{ as_of_date() }} - last_order_date)
                || ' days since the last ' || rhythm_basis || ', usually every ' || usual_order_interval_days
                || ' days' end,
            case when is_key_account_not_visited then 'not_visited: key account, last visit '
                || coalesce(last_visit_date::text, 'never') end
        ), '') as defection_reasons
    from signals

)

select * from final
