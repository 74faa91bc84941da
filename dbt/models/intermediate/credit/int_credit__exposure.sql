-- What a customer owes us or will owe us: open receivables + open orders not yet shipped
-- + goods shipped but not yet invoiced. Exposure above the credit limit stops shipment.
-- An order's state is read from its dates, as it was on the as-of date (an order invoiced
-- in October was open on 30 September), not from its status today. Where a date is not
-- known, today's status stands in: a cancelled order without a cancellation date, an order
-- marked invoiced whose invoice is not loaded, shipped quantities without shipments.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

orders as (

    select * from {{ ref('stg_erp__sales_orders') }}

),

order_lines as (

    select * from {{ ref('stg_erp__sales_order_lines') }}

),

shipments as (

    select * from {{ ref('stg_erp__shipments') }}

),

invoices as (

    select * from {{ ref('int_billing__invoices') }}

),

invoicing as (

    select
        order_id,
        min(invoice_date) filter (where invoice_status = 'posted') as first_invoice_date
    from invoices
    where order_id is not null
    group by order_id

),

shipped as (

    select
        order_id,
        sum(shipment_amount) filter (where ship_date <= {{ as_of_date() }}) as shipped_amount
    from shipments
    where order_id is not null
    group by order_id

),

order_values as (

    select
        order_id,
        sum(ordered_quantity * unit_price) as ordered_amount,
        sum(coalesce(shipped_quantity, 0) * unit_price) as shipped_quantity_amount
    from order_lines
    group by order_id

),

open_orders as (

    -- placed by the as-of date, neither cancelled nor invoiced by then
    select
        orders.order_id,
        orders.customer_id,
        order_values.ordered_amount,
        case
            when shipped.order_id is not null then coalesce(shipped.shipped_amount, 0)
            else order_values.shipped_quantity_amount
        end as shipped_amount
    from orders
    inner join order_values on orders.order_id = order_values.order_id
    left join invoicing on orders.order_id = invoicing.order_id
    left join shipped on orders.order_id = shipped.order_id
    where
        orders.order_date <= {{ as_of_date() }}
        and {{ is_order_standing('orders') }}
        and case
            when invoicing.first_invoice_date is not null then invoicing.first_invoice_date > {{ as_of_date() }}
            else orders.order_status <> 'invoiced'
        end

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
        customer_id,
        sum(greatest(ordered_amount - shipped_amount, 0)) as open_order_amount,
        sum(shipped_amount) as shipped_not_invoiced_amount
    from open_orders
    group by customer_id

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
