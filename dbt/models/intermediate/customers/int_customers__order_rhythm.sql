-- How often each customer orders, over the last two years to the as-of date: the last day
-- it ordered (an open order counts; a cancelled one does not) and its usual interval between
-- distinct order days (two orders on one day are one ordering day). A customer with no
-- order loaded (file loads without sales orders) is measured on its invoice days instead,
-- and rhythm_basis says so.

with

orders as (

    select * from {{ ref('stg_erp__sales_orders') }}

),

invoices as (

    select * from {{ ref('int_billing__posted_invoices') }}

),

bounds as (

    select {{ as_of_date() }} - 2 * 365 as rhythm_excluded

),

order_days as (

    select distinct
        orders.customer_id,
        orders.order_date as activity_date
    from orders
    cross join bounds
    where
        orders.order_date <= {{ as_of_date() }}
        and orders.order_date > bounds.rhythm_excluded
        and {{ is_order_standing('orders') }}

),

invoice_days as (

    select distinct
        invoices.customer_id,
        invoices.invoice_date as activity_date
    from invoices
    cross join bounds
    where
        invoices.invoice_date > bounds.rhythm_excluded
        and not exists (select 1 from order_days where order_days.customer_id = invoices.customer_id)

),

activity as (

    select customer_id, activity_date, 'order' as rhythm_basis from order_days
    union all
    select customer_id, activity_date, 'invoice' as rhythm_basis from invoice_days

),

final as (

    select
        customer_id,
        max(rhythm_basis) as rhythm_basis,
        max(activity_date) as last_order_date,
        count(*) as ordering_days,
        round((max(activity_date) - min(activity_date)) / nullif(count(*) - 1, 0.0), 1) as usual_order_interval_days
    from activity
    group by customer_id

)

select * from final
