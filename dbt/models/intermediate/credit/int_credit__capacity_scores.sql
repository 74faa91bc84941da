-- The capacity factor (还款能力): is the customer's business and payment discipline
-- getting better or worse (last six months vs the six before), less high-risk investments.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

invoices as (

    select * from {{ ref('int_billing__posted_invoices') }}

),

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

character as (

    select * from {{ ref('int_credit__character_scores') }}

),

revenue_halves as (

    select
        customer_id,
        sum(case when invoice_date > {{ as_of_date() }} - 182 then invoice_amount else 0 end) as revenue_last_6m,
        sum(case when invoice_date <= {{ as_of_date() }} - 182 then invoice_amount else 0 end) as revenue_prior_6m
    from invoices
    where invoice_date > {{ as_of_date() }} - 364
    group by customer_id

),

lateness_halves as (

    select
        customer_id,
        sum(case when settled_date > {{ as_of_date() }} - 182
            then invoice_amount * greatest(settled_date - due_date, 0) end)
        / nullif(sum(case when settled_date > {{ as_of_date() }} - 182 then invoice_amount end), 0) as days_late_last_6m,
        sum(case when settled_date <= {{ as_of_date() }} - 182
            then invoice_amount * greatest(settled_date - due_date, 0) end)
        / nullif(sum(case when settled_date <= {{ as_of_date() }} - 182 then invoice_amount end), 0) as days_late_prior_6m
    from balances
    where settled_date > {{ as_of_date() }} - 364 and settled_date <= {{ as_of_date() }}
    group by customer_id

),

trends as (

    select
        customers.customer_id,
        (revenue_halves.revenue_last_6m - revenue_halves.revenue_prior_6m)
        / nullif(revenue_halves.revenue_prior_6m, 0) as revenue_trend,
        lateness_halves.days_late_last_6m - lateness_halves.days_late_prior_6m as payment_trend_days,
        coalesce(character.capacity_penalty_points, 0) as capacity_penalty_points,
        character.capacity_events
    from customers
    left join revenue_halves on customers.customer_id = revenue_halves.customer_id
    left join lateness_halves on customers.customer_id = lateness_halves.customer_id
    left join character on customers.customer_id = character.customer_id

),

final as (

    select
        customer_id,
        round(revenue_trend, 3) as revenue_trend,
        round(payment_trend_days, 1) as payment_trend_days,
        capacity_penalty_points,
        capacity_events,
        cast(greatest(0, least(100,
            (coalesce({{ ratio_score('revenue_trend', 'revenue_trend') }}, 50)
             + coalesce({{ ratio_score('payment_trend_days', 'payment_trend_days') }}, 50)) / 2
            - capacity_penalty_points
        )) as numeric(5, 1)) as capacity_score
    from trends

)

select * from final
