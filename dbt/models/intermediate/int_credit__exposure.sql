-- What a customer owes us or will owe us: open receivables + open orders not yet shipped
-- + goods shipped but not yet invoiced. Exposure above the credit limit stops shipment.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

orders as (

    select * from {{ ref('stg_erp__sales_orders') }}
    where order_status in ('open', 'shipped') and order_date <= {{ as_of_date() }}

),

order_lines as (

    select * from {{ ref('stg_erp__sales_order_lines') }}

),

open_ar as (

    select
        customer_id,
        sum(open_amount) as open_ar_amount
    from balances
    where open_amount >= {{ policy('amount_tolerance') }}
    group by customer_id

),

uninvoiced as (

    select
        orders.customer_id,
        sum(greatest(order_lines.ordered_quantity - coalesce(order_lines.shipped_quantity, 0), 0)
            * order_lines.unit_price) as open_order_amount,
        sum(coalesce(order_lines.shipped_quantity, 0) * order_lines.unit_price) as shipped_not_invoiced_amount
    from orders
    inner join order_lines on orders.order_id = order_lines.order_id
    group by orders.customer_id

),

final as (

    select
        customers.customer_id,
        cast(coalesce(open_ar.open_ar_amount, 0) as numeric(18, 2)) as open_ar_amount,
        cast(coalesce(uninvoiced.open_order_amount, 0) as numeric(18, 2)) as open_order_amount,
        cast(coalesce(uninvoiced.shipped_not_invoiced_amount, 0) as numeric(18, 2)) as shipped_not_invoiced_amount,
        cast(coalesce(open_ar.open_ar_amount, 0) + coalesce(uninvoiced.open_order_amount, 0)
            + coalesce(uninvoiced.shipped_not_invoiced_amount, 0) as numeric(18, 2)) as exposure
    from customers
    left join open_ar on customers.customer_id = open_ar.customer_id
    left join uninvoiced on customers.customer_id = uninvoiced.customer_id

)

select * from final
