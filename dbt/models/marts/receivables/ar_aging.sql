-- One row per customer and company whose book it is in (a customer with no book at all
-- shows under the default company): what is owed on the as-of date, by aging bucket, in the
-- company's currency, and how the customer pays. The bucket columns come from the
-- aging_buckets seed.
-- depends_on: {{ ref('aging_buckets') }}, {{ ref('customer_tiers') }} (the keys ar_aging_contract() adds)

{%- set bucket_names = seed_column_values('aging_buckets', 'bucket_name', 'sort_order') %}

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

companies as (

    select * from {{ ref('stg_erp__companies') }}

),

open_items as (

    select * from {{ ref('ar_open_items') }}

),

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

behaviour as (

    select * from {{ ref('int_ar__payment_behaviour') }}

),

window_start as (

    select {{ trailing_window_excluded_date() }} as first_excluded_date

),

open_by_customer as (

    select
        company_id,
        customer_id,
        sum(open_amount) as open_amount,
        sum(revaluation_difference) as revaluation_difference,
        sum(case when days_past_due <= 0 then open_amount else 0 end) as not_due_amount,
        sum(case when days_past_due > 0 then open_amount else 0 end) as overdue_amount,
        {%- for bucket in bucket_names %}
        sum(case when aging_bucket = '{{ bucket }}' then open_amount else 0 end) as bucket_{{ bucket }},
        {%- endfor %}
        max(case when days_past_due > 0 then days_past_due end) as oldest_days_past_due,
        count(*) as open_invoice_count
    from open_items
    group by company_id, customer_id

),

sales_12m as (

    select
        balances.company_id,
        balances.customer_id,
        sum(balances.invoice_amount) as sales_12m
    from balances
    cross join window_start
    where balances.invoice_date > window_start.first_excluded_date
    group by balances.company_id, balances.customer_id

),

unapplied_payments as (

    select * from {{ ref('ar_unapplied_cash') }}

),

unapplied as (

    -- cash that settles no invoice on the as-of date (ar_unapplied_cash lists it by payment),
    -- plus invoices settled beyond their amount
    select
        company_id,
        customer_id,
        sum(unapplied_amount) as unapplied_cash
    from (
        select
            company_id,
            customer_id,
            unapplied_amount
        from unapplied_payments
        union all
        select
            company_id,
            customer_id,
            -open_amount
        from balances
        where open_document_amount <= -{{ policy('amount_tolerance') }}
    ) as unapplied_items
    group by company_id, customer_id

),

books as (

    -- every company a customer has a book in, and the default company for one with none
    select company_id, customer_id from open_by_customer
    union
    select company_id, customer_id from sales_12m
    union
    select company_id, customer_id from unapplied

),

customer_books as (

    select
        customers.*,
        coalesce(books.company_id, default_company.company_id) as company_id
    from customers
    left join books on customers.customer_id = books.customer_id
    cross join (select company_id from companies where is_default_company) as default_company

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        customers.customer_id,
        customers.company_id,
        companies.company_currency,
        customers.customer_name,
        customers.account_manager,
        cast(coalesce(open_by_customer.open_amount, 0) as numeric(18, 2)) as open_amount,
        cast(coalesce(open_by_customer.not_due_amount, 0) as numeric(18, 2)) as not_due_amount,
        cast(coalesce(open_by_customer.overdue_amount, 0) as numeric(18, 2)) as overdue_amount,
        {%- for bucket in bucket_names %}
        cast(coalesce(open_by_customer.bucket_{{ bucket }}, 0) as numeric(18, 2)) as bucket_{{ bucket }},
        {%- endfor %}
        coalesce(open_by_customer.open_invoice_count, 0) as open_invoice_count,
        open_by_customer.oldest_days_past_due,
        cast(coalesce(sales_12m.sales_12m, 0) as numeric(18, 2)) as sales_12m,
        {{ days_sales_outstanding('coalesce(open_by_customer.open_amount, 0)', 'sales_12m.sales_12m') }} as dso_days,
        round(behaviour.weighted_avg_days_late_12m, 1) as weighted_avg_days_late_12m,
        round(behaviour.collection_rate_12m, 4) as collection_rate_12m,
        round(coalesce(open_by_customer.open_amount, 0) / nullif(sales_12m.sales_12m, 0), 4) as ar_to_annual_sales,
        cast(coalesce(unapplied.unapplied_cash, 0) as numeric(18, 2)) as unapplied_cash,
        cast(coalesce(open_by_customer.revaluation_difference, 0) as numeric(18, 2)) as revaluation_difference
    from customer_books as customers
    left join companies on customers.company_id = companies.company_id
    left join open_by_customer
        on customers.customer_id = open_by_customer.customer_id and customers.company_id = open_by_customer.company_id
    left join sales_12m
        on customers.customer_id = sales_12m.customer_id and customers.company_id = sales_12m.company_id
    left join behaviour on customers.customer_id = behaviour.customer_id
    left join unapplied
        on customers.customer_id = unapplied.customer_id and customers.company_id = unapplied.company_id

)

select * from final
