-- How each customer pays, over the trailing 12 months: used by the aging mart, the value
-- score and the credit character score.

with

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

window_start as (

    select {{ trailing_window_excluded_date() }} as first_excluded_date

),

settled_12m as (

    -- invoices settled in the window: amount-weighted days between due date and settlement
    select
        balances.customer_id,
        sum(balances.invoice_amount * greatest(balances.settled_date - balances.due_date, 0))
        / nullif(sum(balances.invoice_amount), 0) as weighted_avg_days_late_12m
    from balances
    cross join window_start
    where balances.settled_date > window_start.first_excluded_date
    group by balances.customer_id

),

due_12m as (

    -- of what fell due in the window: the share settled by the as-of date, and on time (within the grace days)
    select
        balances.customer_id,
        sum(balances.invoice_amount) as due_amount_12m,
        sum(least(balances.invoice_amount, balances.paid_amount + balances.credited_amount + balances.deducted_amount))
            as collected_amount_12m,
        sum(case
            when balances.settled_date <= balances.due_date + cast({{ policy('on_time_grace_days') }} as integer)
                then balances.invoice_amount
            else 0
        end) / nullif(sum(balances.invoice_amount), 0) as on_time_ratio_12m,
        count(*) as invoices_due_12m
    from balances
    cross join window_start
    where balances.due_date > window_start.first_excluded_date and balances.due_date <= {{ as_of_date() }}
    group by balances.customer_id

),

final as (

    select
        coalesce(due_12m.customer_id, settled_12m.customer_id) as customer_id,
        settled_12m.weighted_avg_days_late_12m,
        due_12m.due_amount_12m,
        due_12m.collected_amount_12m,
        due_12m.collected_amount_12m / nullif(due_12m.due_amount_12m, 0) as collection_rate_12m,
        due_12m.on_time_ratio_12m,
        coalesce(due_12m.invoices_due_12m, 0) as invoices_due_12m
    from due_12m
    full outer join settled_12m on due_12m.customer_id = settled_12m.customer_id

)

select * from final
