-- The headline figures, one row per company: what finance, the report, the dashboards and the
-- finance email show at the top. Receivables are the company's book, in its currency; the
-- customer measures count the customers with a book in the company.

with

aging as (

    select * from {{ ref('ar_aging') }}

),

companies as (

    select * from {{ ref('stg_erp__companies') }}

),

behaviour as (

    select * from {{ ref('int_ar__payment_behaviour') }}

),

tiers as (

    select * from {{ ref('customer_tiers') }}

),

stops as (

    select * from {{ ref('stop_shipments') }}

),

fees as (

    select * from {{ ref('fee_recovery_by_distributor') }}

),

window_start as (

    select {{ trailing_window_excluded_date() }} as first_excluded_date

),

receivables as (

    select
        company_id,
        max(company_currency) as company_currency,
        sum(open_amount) as total_receivables,
        sum(overdue_amount) as overdue_receivables,
        sum(sales_12m) as sales_12m,
        count(*) filter (where open_amount > 0) as customers_with_receivables,
        count(*) filter (where overdue_amount > 0) as customers_overdue
    from aging
    group by company_id

),

company_customers as (

    select distinct company_id, customer_id from aging

),

customer_measures as (

    select
        company_customers.company_id,
        sum(behaviour.collected_amount_12m) / nullif(sum(behaviour.due_amount_12m), 0) as collection_rate_12m,
        count(stops.customer_id) as customers_on_stop,
        sum(case when tiers.is_key_account then tiers.net_revenue_12m else 0 end)
        / nullif(sum(tiers.net_revenue_12m), 0) as key_account_revenue_share
    from company_customers
    left join behaviour on company_customers.customer_id = behaviour.customer_id
    left join stops on company_customers.customer_id = stops.customer_id
    left join tiers on company_customers.customer_id = tiers.customer_id
    group by company_customers.company_id

),

recoverable_fees as (

    select
        company_customers.company_id,
        sum(fees.recoverable_amount) as recoverable_fees_12m
    from fees
    cross join window_start
    inner join company_customers on fees.distributor_id = company_customers.customer_id
    where fees.fee_period > window_start.first_excluded_date
    group by company_customers.company_id

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        receivables.company_id,
        companies.company_name,
        companies.is_default_company,
        receivables.company_currency,
        cast(receivables.total_receivables as numeric(18, 2)) as total_receivables,
        cast(receivables.overdue_receivables as numeric(18, 2)) as overdue_receivables,
        cast(round(receivables.overdue_receivables / nullif(receivables.total_receivables, 0), 4)
            as numeric(9, 4)) as overdue_share,
        cast({{ days_sales_outstanding('receivables.total_receivables', 'receivables.sales_12m') }}
            as numeric(9, 1)) as dso_days,
        cast(round(customer_measures.collection_rate_12m, 4) as numeric(9, 4)) as collection_rate_12m,
        cast(coalesce(recoverable_fees.recoverable_fees_12m, 0) as numeric(18, 2)) as recoverable_fees_12m,
        cast(customer_measures.customers_on_stop as integer) as customers_on_stop,
        cast(round(customer_measures.key_account_revenue_share, 4) as numeric(9, 4)) as key_account_revenue_share,
        cast(receivables.customers_with_receivables as integer) as customers_with_receivables,
        cast(receivables.customers_overdue as integer) as customers_overdue
    from receivables
    inner join companies on receivables.company_id = companies.company_id
    left join customer_measures on receivables.company_id = customer_measures.company_id
    left join recoverable_fees on receivables.company_id = recoverable_fees.company_id

)

select * from final
