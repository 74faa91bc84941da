-- What each customer bought: trailing-12-month revenue, volume, price and margin, the
-- recent window against the same window a year earlier, and its last invoice (the order
-- rhythm is int_customers__order_rhythm's).

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

invoices as (

    select * from {{ ref('int_billing__posted_invoices') }}

),

invoice_lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

products as (

    select * from {{ ref('stg_erp__products') }}

),

credit_notes as (

    select * from {{ ref('int_billing__credit_notes') }}
    where credit_date <= {{ as_of_date() }}

),

bounds as (

    select
        {{ trailing_window_excluded_date() }} as window_excluded,
        {{ as_of_date() }} - cast({{ policy('defection_window_days') }} as integer) as recent_excluded,
        {{ as_of_date() }} - 365 as prior_year_as_of,
        {{ as_of_date() }} - 365 - cast({{ policy('defection_window_days') }} as integer) as prior_year_excluded,
        {{ as_of_date() }} - 2 * 365 as rhythm_excluded

),

invoice_activity as (

    -- one pass over the invoices for every window; each measure keeps to its own
    select
        invoices.customer_id,
        sum(invoices.invoice_amount) filter (where invoices.invoice_date > bounds.window_excluded)
            as gross_revenue_12m,
        count(*) filter (where invoices.invoice_date > bounds.window_excluded) as invoice_count_12m,
        sum(invoices.invoice_amount) filter (where invoices.invoice_date > bounds.recent_excluded)
            as revenue_recent_window,
        sum(invoices.invoice_amount) filter (
            where invoices.invoice_date > bounds.prior_year_excluded
            and invoices.invoice_date <= bounds.prior_year_as_of
        ) as revenue_same_window_last_year,
        max(invoices.invoice_date) filter (where invoices.invoice_date > bounds.rhythm_excluded)
            as last_invoice_date
    from invoices
    cross join bounds
    where invoices.invoice_date > least(bounds.window_excluded, bounds.prior_year_excluded, bounds.rhythm_excluded)
    group by invoices.customer_id

),

lines_12m as (

    select
        invoices.customer_id,
        sum(invoice_lines.quantity) as quantity_12m,
        sum(invoice_lines.line_amount) as line_revenue_12m,
        sum(invoice_lines.line_cost_amount) as line_cost_12m,
        sum(invoice_lines.quantity * products.list_price) as list_value_12m
    from invoice_lines
    inner join invoices on invoice_lines.invoice_id = invoices.invoice_id
    left join products on invoice_lines.product_id = products.product_id
    cross join bounds
    where invoices.invoice_date > bounds.window_excluded
    group by invoices.customer_id

),

credits_12m as (

    select
        credit_notes.customer_id,
        sum(credit_notes.credit_amount) as credited_12m,
        sum(case when credit_notes.credit_reason in ('quality', 'return') then credit_notes.credit_amount else 0 end)
            as quality_credits_12m
    from credit_notes
    cross join bounds
    where credit_notes.credit_date > bounds.window_excluded
    group by credit_notes.customer_id

),

final as (

    select
        customers.customer_id,
        coalesce(invoice_activity.gross_revenue_12m, 0) as gross_revenue_12m,
        coalesce(credits_12m.credited_12m, 0) as credited_12m,
        coalesce(invoice_activity.gross_revenue_12m, 0) - coalesce(credits_12m.credited_12m, 0) as net_revenue_12m,
        coalesce(invoice_activity.invoice_count_12m, 0) as invoice_count_12m,
        coalesce(lines_12m.quantity_12m, 0) as quantity_12m,
        lines_12m.line_revenue_12m / nullif(lines_12m.list_value_12m, 0) as unit_price_vs_list,
        (lines_12m.line_revenue_12m - lines_12m.line_cost_12m) / nullif(lines_12m.line_revenue_12m, 0) as gross_margin,
        coalesce(credits_12m.quality_credits_12m, 0) / nullif(invoice_activity.gross_revenue_12m, 0) as quality_loss,
        coalesce(invoice_activity.revenue_recent_window, 0) as revenue_recent_window,
        coalesce(invoice_activity.revenue_same_window_last_year, 0) as revenue_same_window_last_year,
        invoice_activity.last_invoice_date
    from customers
    left join invoice_activity on customers.customer_id = invoice_activity.customer_id
    left join lines_12m on customers.customer_id = lines_12m.customer_id
    left join credits_12m on customers.customer_id = credits_12m.customer_id

)

select * from final
