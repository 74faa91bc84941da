-- One row per invoice instalment still owed on the as-of date (an invoice without a payment
-- schedule is one instalment), aged by its due date (and by invoice date); invoice_amount,
-- paid_amount, credited_amount and deducted_amount are the whole invoice's.
-- Credit balances (an invoice settled beyond its amount) are not open items: they show
-- as unapplied cash in ar_aging. Amounts are in the company's currency; a foreign-currency
-- item also shows what is owed in its own currency, and (where erp.exchange_rates has a rate
-- on or before the as-of date) what that is worth in the company's currency today.

with

balances as (

    select * from {{ ref('int_ar__invoice_balances') }}

),

installments as (

    select * from {{ ref('int_ar__open_installments') }}

),

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

buckets as (

    select * from {{ ref('aging_buckets') }}

),

exchange_rates as (

    select * from {{ ref('stg_erp__exchange_rates') }}

),

open_items as (

    select
        balances.invoice_id,
        balances.invoice_number,
        balances.customer_id,
        balances.company_id,
        balances.company_currency,
        balances.document_currency,
        balances.invoice_date,
        balances.is_due_date_from_terms,
        balances.invoice_amount,
        balances.paid_amount,
        balances.credited_amount,
        balances.deducted_amount,
        balances.invoice_document_amount,
        installments.installment_no,
        installments.installment_count,
        installments.due_date,
        installments.open_amount,
        installments.open_document_amount,
        {{ as_of_date() }} - installments.due_date as days_past_due,
        {{ as_of_date() }} - balances.invoice_date as days_since_invoice
    from balances
    inner join installments on balances.invoice_id = installments.invoice_id
    where installments.open_document_amount >= {{ policy('amount_tolerance') }}

),

revalued as (

    select
        open_items.*,
        case
            when open_items.document_currency = open_items.company_currency then open_items.open_amount
            else cast(open_items.open_document_amount * as_of_rate.rate as numeric(18, 2))
        end as revalued_open_amount
    from open_items
    left join lateral (
        select exchange_rates.rate
        from exchange_rates
        where exchange_rates.currency = open_items.document_currency
            and exchange_rates.rate_date <= {{ as_of_date() }}
        order by exchange_rates.rate_date desc
        limit 1
    ) as as_of_rate on open_items.document_currency <> open_items.company_currency

),

final as (

    select
        {{ as_of_date() }} as as_of_date,
        open_items.invoice_id,
        open_items.invoice_number,
        open_items.customer_id,
        open_items.company_id,
        customers.customer_name,
        customers.account_manager,
        customers.account_manager_email,
        open_items.invoice_date,
        open_items.installment_no,
        open_items.installment_count,
        open_items.due_date,
        open_items.is_due_date_from_terms,
        cast(open_items.invoice_amount as numeric(18, 2)) as invoice_amount,
        cast(open_items.paid_amount as numeric(18, 2)) as paid_amount,
        cast(open_items.credited_amount as numeric(18, 2)) as credited_amount,
        cast(open_items.deducted_amount as numeric(18, 2)) as deducted_amount,
        open_items.open_amount,
        open_items.company_currency,
        open_items.document_currency,
        cast(open_items.invoice_document_amount as numeric(18, 2)) as invoice_document_amount,
        open_items.open_document_amount,
        open_items.revalued_open_amount,
        open_items.revalued_open_amount - open_items.open_amount as revaluation_difference,
        open_items.days_past_due,
        due_bucket.bucket_name as aging_bucket,
        due_bucket.sort_order as aging_bucket_order,
        open_items.days_since_invoice,
        invoice_age_bucket.bucket_name as invoice_age_bucket
    from revalued as open_items
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
