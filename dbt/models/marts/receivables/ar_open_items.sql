-- One row per invoice still owed on the as-of date, aged by due date (and by invoice date).
-- Credit balances (an invoice settled beyond its amount) are not open items: they show
-- as unapplied cash in ar_aging.

with

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

buckets as (

    select * from {{ ref('aging_buckets') }}

),

open_items as (

    select
        *,
        {{ as_of_date() }} - due_date as days_past_due,
        {{ as_of_date() }} - invoice_date as days_since_invoice
    from balances
    where open_amount >= {{ policy('amount_tolerance') }}

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        open_items.invoice_id,
        open_items.invoice_number,
        open_items.customer_id,
        customers.customer_name,
        customers.account_manager,
        customers.account_manager_email,
        open_items.invoice_date,
        open_items.due_date,
        open_items.is_due_date_from_terms,
        cast(open_items.invoice_amount as numeric(18, 2)) as invoice_amount,
        cast(open_items.paid_amount as numeric(18, 2)) as paid_amount,
        cast(open_items.credited_amount as numeric(18, 2)) as credited_amount,
        cast(open_items.deducted_amount as numeric(18, 2)) as deducted_amount,
        open_items.open_amount,
        open_items.days_past_due,
        due_bucket.bucket_name as aging_bucket,
        due_bucket.sort_order as aging_bucket_order,
        open_items.days_since_invoice,
        invoice_age_bucket.bucket_name as invoice_age_bucket
    from open_items
    left join customers on open_items.customer_id = customers.customer_id
    left join buckets as due_bucket
        on open_items.days_past_due
        between coalesce(due_bucket.min_days_past_due, -2147483648)
        and coalesce(due_bucket.max_days_past_due, 2147483647)
    left join buckets as invoice_age_bucket
        on open_items.days_since_invoice
        between coalesce(invoice_age_bucket.min_days_past_due, -2147483648)
        and coalesce(invoice_age_bucket.max_days_past_due, 2147483647)

)

select * from final
