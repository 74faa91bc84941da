-- False key accounts (真大户/假大户): a distributor whose sell-in is large but whose
-- sell-through is not. Evidence over the last complete months (two quarters by default):
-- closing stock in months of sell-out, sell-in / sell-out, and the share of sell-out
-- reported outside its territory (cross-region diversion, 串货).

with

customers as (

    select * from {{ ref('stg_erp__customers') }}
    where customer_type = 'distributor'

),

invoices as (

    select * from {{ ref('int_billing__posted_invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

sell_out as (

    select * from {{ ref('stg_erp__sell_out') }}

),

months as (

    select
        cast(date_trunc('month', {{ as_of_date() }}) as date) as current_month,
        cast(date_trunc('month', {{ as_of_date() }})
            - make_interval(months => cast({{ policy('sell_through_window_months') }} as integer)) as date)
            as window_start

),

sell_in as (

    select
        invoices.customer_id,
        sum(invoice_lines.quantity) as sell_in_quantity
    from invoices
    inner join invoice_lines on invoices.invoice_id = invoice_lines.invoice_id
    cross join months
    where invoices.invoice_date >= months.window_start and invoices.invoice_date < months.current_month
    group by invoices.customer_id

),

sold as (

    select
        sell_out.customer_id,
        sum(sell_out.quantity_sold) as sell_out_quantity,
        sum(case
            when sell_out.sell_out_region <> all(string_to_array(replace(customers.territory, ' ', ''), ','))
                then sell_out.quantity_sold
            else 0
        end) as out_of_territory_quantity
    from sell_out
    inner join customers on sell_out.customer_id = customers.customer_id
    cross join months
    where sell_out.period_month >= months.window_start and sell_out.period_month < months.current_month
    group by sell_out.customer_id

),

latest_month as (

    select
        sell_out.customer_id,
        max(sell_out.period_month) as last_reported_month
    from sell_out
    cross join months
    where sell_out.period_month < months.current_month
    group by sell_out.customer_id

),

stock as (

    -- closing stock of the last reported month against the average monthly sell-out of
    -- the three months up to it
    select
        sell_out.customer_id,
        sum(case when sell_out.period_month = latest_month.last_reported_month
            then sell_out.closing_inventory_quantity else 0 end) as closing_inventory_quantity,
        sum(sell_out.quantity_sold) / 3.0 as avg_monthly_sell_out
    from sell_out
    inner join latest_month on sell_out.customer_id = latest_month.customer_id
    where sell_out.period_month > cast(latest_month.last_reported_month - interval '3 months' as date)
    group by sell_out.customer_id

),

evidence as (

    select
        customers.customer_id,
        round(stock.closing_inventory_quantity / nullif(stock.avg_monthly_sell_out, 0), 2) as inventory_months,
        round(sell_in.sell_in_quantity / nullif(sold.sell_out_quantity, 0), 3) as sell_in_sell_out_ratio,
        round(sold.out_of_territory_quantity / nullif(sold.sell_out_quantity, 0), 3) as out_of_territory_share
    from customers
    left join sell_in on customers.customer_id = sell_in.customer_id
    left join sold on customers.customer_id = sold.customer_id
    left join stock on customers.customer_id = stock.customer_id

),

final as (

    select
        *,
        coalesce(inventory_months > {{ policy('inventory_months_threshold') }}
            or sell_in_sell_out_ratio > {{ policy('sell_in_sell_out_ratio_threshold') }}, false) as is_inventory_piling,
        coalesce(out_of_territory_share > {{ policy('out_of_territory_share_threshold') }}, false) as is_cross_region
    from evidence

)

select * from final
